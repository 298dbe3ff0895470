/* `ddpt tokenize`: BERT WordPiece tokens (or ids) of a text, one output line
 * per input line, exactly as google-research/bert's FullTokenizer gives them.
 * With --out the result is written to a temporary name and renamed. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "corpus/tok_lines.h"
#include "corpus/tokenizer.h"
#include "corpus/vocab.h"
#include "util/status.h"

/* Formats one output line into *buf (grown as needed) and writes it with one
 * fwrite: printf per id would cost more than the tokenizing. */
static int tokenize_write_line(FILE *out, const tok_vocab *v, const tok_ids *ids, int as_ids,
                               char **buf, size_t *cap) {
  size_t len = 0;
  for (size_t i = 0; i < ids->len; i++) {
    const char *tok = as_ids ? NULL : tok_vocab_token(v, ids->ids[i]);
    size_t need = len + 2 + (tok ? strlen(tok) : 11);
    if (need > *cap) {
      size_t n = *cap ? *cap * 2 : 4096;
      while (n < need) n *= 2;
      char *b = realloc(*buf, n);
      if (!b) return ST_NOMEM;
      *buf = b;
      *cap = n;
    }
    if (i > 0) (*buf)[len++] = ' ';
    if (tok) {
      size_t n = strlen(tok);
      memcpy(*buf + len, tok, n);
      len += n;
    } else {
      char digits[12];
      size_t n = 0;
      uint32_t id = (uint32_t)ids->ids[i];
      do digits[n++] = (char)('0' + id % 10); while ((id /= 10) > 0);
      while (n > 0) (*buf)[len++] = digits[--n];
    }
  }
  if (len + 1 > *cap) {
    char *b = realloc(*buf, len + 1);
    if (!b) return ST_NOMEM;
    *buf = b;
    *cap = len + 1;
  }
  (*buf)[len++] = '\n';
  return fwrite(*buf, 1, len, out) == len ? ST_OK : ST_IO;
}

static int tokenize_stream(const char *in_path, FILE *out, const char *out_name, const tok_vocab *v,
                           int lowercase, int as_ids, char **err) {
  tok_lines *lines = NULL;
  tokenizer *t = NULL;
  tok_ids ids = {0};
  char *buf = NULL;
  size_t cap = 0;
  int rc = tok_lines_open(in_path, TOK_LINES_MAX_BYTES, &lines, err);
  if (rc != ST_OK) goto fail;
  rc = tok_create(v, lowercase, &t, err);
  if (rc != ST_OK) goto fail;
  for (;;) {
    const char *line;
    size_t len;
    rc = tok_lines_next(lines, &line, &len, err);
    if (rc != ST_OK || !line) break;
    ids.len = 0;
    rc = tok_encode(t, line, len, &ids, NULL, err);
    if (rc != ST_OK) break;
    rc = tokenize_write_line(out, v, &ids, as_ids, &buf, &cap);
    if (rc != ST_OK) {
      rc = rc == ST_NOMEM ? status_set(err, rc, "out of memory formatting output")
                          : status_set(err, rc, "cannot write '%s': %s", out_name, strerror(errno));
      break;
    }
  }
fail:
  free(buf);
  tok_ids_free(&ids);
  tok_free(t);
  tok_lines_close(lines);
  return rc;
}

/* Writes to a temporary name beside out_path, fsyncs and renames, so that a
 * failed run leaves no partial file under the final name. */
static int tokenize_to_file(const char *in_path, const char *out_path, const tok_vocab *v,
                            int lowercase, int as_ids, char **err) {
  size_t n = strlen(out_path) + 32;
  char *tmp = malloc(n);
  if (!tmp) return status_set(err, ST_NOMEM, "out of memory");
  snprintf(tmp, n, "%s.tmp.%ld", out_path, (long)getpid());
  FILE *out = fopen(tmp, "wb");
  int rc;
  if (!out) {
    rc = status_set(err, ST_IO, "cannot create '%s': %s; check the --out directory", tmp,
                    strerror(errno));
    free(tmp);
    return rc;
  }
  rc = tokenize_stream(in_path, out, out_path, v, lowercase, as_ids, err);
  if (rc == ST_OK && (fflush(out) != 0 || fsync(fileno(out)) != 0))
    rc = status_set(err, ST_IO, "cannot write '%s': %s", tmp, strerror(errno));
  if (fclose(out) != 0 && rc == ST_OK)
    rc = status_set(err, ST_IO, "cannot write '%s': %s", tmp, strerror(errno));
  if (rc == ST_OK && rename(tmp, out_path) != 0)
    rc = status_set(err, ST_IO, "cannot rename '%s' to '%s': %s", tmp, out_path, strerror(errno));
  if (rc != ST_OK) remove(tmp);
  free(tmp);
  return rc;
}

int cmd_tokenize(int argc, char **argv) {
  static const struct option opts[] = {
      {"vocab", required_argument, NULL, 'v'}, {"cased", no_argument, NULL, 'c'},
      {"ids", no_argument, NULL, 'i'},         {"out", required_argument, NULL, 'o'},
      {NULL, 0, NULL, 0},
  };
  const char *vocab_path = NULL, *out_path = NULL;
  int cased = 0, as_ids = 0, opt;
  opterr = 0;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (opt) {
    case 'v': vocab_path = optarg; break;
    case 'c': cased = 1; break;
    case 'i': as_ids = 1; break;
    case 'o': out_path = optarg; break;
    default: return cli_bad_option("tokenize", argc, argv);
    }
  }
  if (!vocab_path) return cli_usage_error("tokenize", "--vocab FILE is required");
  if (argc - optind > 1) return cli_usage_error("tokenize", "expected one input FILE (or -), got %d",
                                                argc - optind);
  const char *in_path = optind < argc ? argv[optind] : "-";

  char *err = NULL;
  tok_vocab *v = NULL;
  if (tok_vocab_load(vocab_path, &v, &err) != ST_OK) return cli_fail("tokenize", err);
  int rc;
  if (out_path) {
    rc = tokenize_to_file(in_path, out_path, v, !cased, as_ids, &err);
  } else {
    rc = tokenize_stream(in_path, stdout, "standard output", v, !cased, as_ids, &err);
    if (rc == ST_OK && fflush(stdout) != 0)
      rc = status_set(&err, ST_IO, "cannot write standard output: %s", strerror(errno));
  }
  tok_vocab_free(v);
  return rc == ST_OK ? CLI_EXIT_OK : cli_fail("tokenize", err);
}
