/* The output side of ddpt shard, shared by the pretraining writer
 * (shard_writer.c) and the labelled one (labelled.c): the output directory,
 * the vocab copied into it, and sets of LevelDB shards that records are
 * routed to round-robin. Internal to corpus/; LevelDB's types appear here
 * only as incomplete pointers. */
#ifndef DDPT_CORPUS_SHARD_OUT_H
#define DDPT_CORPUS_SHARD_OUT_H

#include <leveldb/c.h>
#include <stddef.h>
#include <stdint.h>

#include "corpus/manifest.h"
#include "corpus/record.h"
#include "corpus/shard_writer.h"
#include "corpus/vocab.h"

/* Keys the draw that sends a document (an example) to validation. */
#define SHARD_VALID_SEED_TAG 0x76616c6964617431ull /* "validat1" */

/* Makes dir an empty directory (*created: it did not exist). An existing
 * corpus is replaced only with overwrite; anything else in dir is refused. */
/* Whether document (pretraining) or example (labelled) number index goes
 * to the validation split: drawn with probability valid_fraction from the
 * seed and the number alone, so threads and inputs' order of arrival do
 * not change the split. */
int shard_out_to_valid(double valid_fraction, uint64_t seed, uint64_t index);

int shard_out_prepare(const char *dir, int overwrite, int *created, char **err);

/* Removes the corpus in dir, manifest first so that a crash midway leaves
 * it incomplete rather than wrong. Refuses if dir holds anything else. */
int shard_out_remove(const char *dir, char **err);

/* Copies the vocab into dir and checks the copy is the vocab that was
 * loaded (want_hex, its SHA-256). */
int shard_out_copy_vocab(const char *from, const char *dir, const char *want_hex, char **err);

/* Loads the vocab at path into *vocab and records in m what the manifest
 * takes from it: the special ids and the width of an id. */
int shard_out_load_vocab(const char *path, tok_vocab **vocab, manifest *m, char **err);

/* The current UTC time, ISO 8601, for the manifest. */
void shard_out_utc_now(char *buf, size_t size);

typedef struct out_shard {
  manifest_shard info;
  leveldb_t *db;
  leveldb_writebatch_t *batch;
  size_t batch_bytes;
} out_shard;

typedef struct shard_set {
  const char *dir;
  out_shard *shards;
  size_t n;
  uint64_t next; /* sequences routed so far; sequence j goes to shard j % n */
  int id_bytes;
  uint8_t *buf;
  leveldb_options_t *options;
  leveldb_writeoptions_t *write;
  shard_progress *progress; /* counts sequences (and tokens) routed */
  int valid;                /* counts them as validation */
} shard_set;

/* Names n shards prefix-NNNNN in dir; each is created when its first
 * record arrives. Records hold at most seq_len ids of id_bytes each. */
int shard_set_open(shard_set *s, const char *dir, const char *prefix, size_t n, int id_bytes,
                   size_t seq_len, char **err);

/* Writes rec to the next shard (ctx is the shard_set): a pack_emit_fn. */
int shard_set_emit(void *ctx, const record *rec, char **err);

/* With finish, flushes and compacts, closes every shard and lists its
 * table files (shard_files_describe); without, only closes. Closing again,
 * or a set never opened, does nothing. The shards' infos stay for the
 * manifest (which shares their file lists); shard_set_free releases them. */
int shard_set_close(shard_set *s, int finish, char **err);
void shard_set_free(shard_set *s);

/* Fills m's fields from the run (opt, input_format's name, the vocab, the
 * counts in p, the shards of train and valid; a labelled corpus's label
 * fields are the caller's) and writes opt->out_dir/manifest.json: the last
 * step, from then on the corpus is complete. m->shards and m->valid are
 * malloc'd; the caller frees them. */
int shard_out_write_manifest(manifest *m, const shard_options *opt, const char *input_format,
                             const tok_vocab *vocab, const shard_progress *p,
                             const shard_set *train, const shard_set *valid, char **err);

#endif
