/* The corpus test fixture (see test_shard_fixture.h). */
#include "test_shard_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util/status.h"

void fixture_init(fixture *f, const char *tag, size_t ndocs, unsigned seed) {
  memset(f, 0, sizeof *f);
  f->root = harness_tmpdir(tag);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f->root);
  snprintf(f->vocab, sizeof f->vocab, "%s/vocab.txt", f->root);
  snprintf(f->text, sizeof f->text, "%s/text.txt", f->root);
  snprintf(f->out, sizeof f->out, "%s/corpus", f->root);
  FILE *v = fopen(f->vocab, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n.\n", v);
  for (char c = 'a'; c <= 'z'; c++) fprintf(v, "%c\n##%c\n", c, c);
  fputs("the\nand\n##ing\n##ed\n", v);
  fclose(v);
  FILE *t = fopen(f->text, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  unsigned x = seed * 2654435761u + 1;
  for (size_t d = 0; d < ndocs; d++) {
    size_t nsent = 1 + (x >> 7) % 8;
    for (size_t s = 0; s < nsent; s++) {
      size_t nwords = 2 + (x >> 11) % 12;
      for (size_t w = 0; w < nwords; w++) {
        x = x * 1103515245u + 12345u;
        size_t len = 1 + (x >> 16) % 7;
        if ((x >> 9) % 5 == 0) fputs("the ", t);
        for (size_t k = 0; k < len; k++) fputc('a' + (int)((x >> (k + 3)) % 26), t);
        fputs((x >> 20) % 9 == 0 ? "ing " : " ", t);
      }
      fputs(".\n", t);
      x = x * 1103515245u + 12345u;
    }
    fputs("\n", t);
  }
  fclose(t);
}

shard_options fixture_options(const fixture *f, size_t shards, size_t seq_len) {
  shard_options opt;
  shard_options_default(&opt);
  static const char *inputs[1];
  inputs[0] = f->text;
  opt.vocab_path = f->vocab;
  opt.out_dir = f->out;
  opt.inputs = inputs;
  opt.num_inputs = 1;
  opt.num_shards = shards;
  opt.seq_len = seq_len;
  opt.format = SHARD_FORMAT_DOCS;
  opt.threads = 2;
  return opt;
}

shard_progress fixture_shard(const shard_options *opt) {
  shard_progress s;
  char *err = NULL;
  int rc = shard_writer_run(opt, &s, &err);
  if (rc) fprintf(stderr, "shard_writer_run: %s\n", err);
  free(err);
  CU_ASSERT_EQUAL_FATAL(rc, ST_OK);
  return s;
}

void fixture_free(fixture *f) {
  harness_rmtree(f->root);
  free(f->root);
}
