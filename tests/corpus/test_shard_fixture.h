/* Test corpora for the shard writer and reader suites: a small vocab and
 * generated multi-document text written to a temporary directory, then
 * sharded through the library. */
#ifndef DDPT_TESTS_CORPUS_SHARD_FIXTURE_H
#define DDPT_TESTS_CORPUS_SHARD_FIXTURE_H

#include <stddef.h>

#include "corpus/shard_writer.h"

typedef struct fixture {
  char *root;  /* temporary directory holding everything below */
  char vocab[512], text[512], out[512];
} fixture;

/* Creates root, vocab.txt (specials, a-z, ##a-z, a few words) and text.txt
 * holding ndocs documents in docs format (generated from seed). */
void fixture_init(fixture *f, const char *tag, size_t ndocs, unsigned seed);
/* Options that shard text.txt into out with the given layout. */
shard_options fixture_options(const fixture *f, size_t shards, size_t seq_len);
/* Shards with opt, asserting success; the run's summary. */
shard_progress fixture_shard(const shard_options *opt);
void fixture_free(fixture *f);

#endif
