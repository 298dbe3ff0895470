/* manifest.json: what a corpus directory holds. ddpt shard writes it last
 * and atomically, so a directory without it is an incomplete corpus, and
 * every reader refuses it. */
#ifndef DDPT_CORPUS_MANIFEST_H
#define DDPT_CORPUS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define MANIFEST_FILE "manifest.json"
#define MANIFEST_FORMAT "ddpt-corpus"
/* Version 2 lists each shard's table files (name, size, CRC32C, key range)
 * and its largest id, so that readers need no LevelDB lock and can check
 * their view; version 1 corpora are refused with "reshard it". */
#define MANIFEST_VERSION 2
#define MANIFEST_VOCAB_FILE "vocab.txt" /* the vocab, copied into the corpus */

/* What the records are for. A manifest without "task" is a pretraining
 * corpus (every corpus written before labelled corpora existed). */
typedef enum {
  MANIFEST_TASK_PRETRAIN, /* packed text for MLM/NSP: plain records */
  MANIFEST_TASK_CLASSIFY, /* one example per record with a class label */
  MANIFEST_TASK_TAG,      /* one sentence per record with a tag per word piece */
} manifest_task;

/* "pretrain", "classify", "tag" <-> the task; parse gives -1 otherwise. */
const char *manifest_task_name(manifest_task t);
int manifest_task_parse(const char *name);

/* One LevelDB table (.ldb) of a finished shard: a reader's immutable view. */
typedef struct manifest_file {
  char name[32];       /* inside the shard's directory: "000005.ldb" */
  uint64_t size;       /* bytes */
  uint32_t crc32c;     /* of the whole file */
  uint64_t first, last; /* the records (keys) it holds, first..last */
} manifest_file;

typedef struct manifest_shard {
  char name[32]; /* directory inside the corpus: "shard-00003", "valid-00000" */
  uint64_t sequences, tokens;
  uint32_t max_id;       /* the largest token id in the shard */
  size_t num_files;
  manifest_file *files; /* (num_files) in key order, keys 0..sequences-1 without gaps */
} manifest_shard;

typedef struct manifest {
  char tool[96];    /* "ddpt 0.1.0 (git ...)" */
  char created[32]; /* UTC, ISO 8601 */
  size_t seq_len;
  int id_bytes; /* 2 or 4 */
  int nsp;      /* records are sentence pairs with NSP labels */
  int lowercase;
  char input_format[16]; /* lines, docs, fortune */
  uint64_t seed;
  double valid_fraction;
  int64_t vocab_size;
  char vocab_sha256[65];
  int32_t cls_id, sep_id, mask_id, pad_id, unk_id;
  /* Totals over training and validation. */
  uint64_t documents, sequences, tokens, unk_tokens, bytes_in, invalid_utf8_bytes;
  size_t num_shards;
  manifest_shard *shards; /* (num_shards) */
  size_t num_valid;
  manifest_shard *valid; /* (num_valid) */
  /* Labelled corpora (task classify or tag); pretraining: 0 and NULL. */
  manifest_task task;
  size_t num_labels;
  char **labels;          /* (num_labels) label id -> name */
  int label_all_pieces;   /* tag: every word piece of a word carries its tag */
  uint64_t *label_counts; /* (2, num_labels) training then validation: examples
                             (classify) or tagged pieces (tag) per label */
  uint64_t truncated;     /* examples cut to seq_len by --truncate */
} manifest;

/* Writes dir/manifest.json through a temporary file, fsync and rename, then
 * fsyncs dir. */
int manifest_write(const char *dir, const manifest *m, char **err);

/* Reads and checks dir/manifest.json: every field, and that the fields
 * agree with each other (totals are the shards' sums, each shard's files
 * cover its keys, ids fit the vocab). *out is malloc'd; free it with
 * manifest_free. A directory without the file is reported as an incomplete
 * corpus (ST_INVALID). */
int manifest_read(const char *dir, manifest **out, char **err);

/* The same from text (len bytes) that `what` names in messages. */
int manifest_parse(const char *text, size_t len, const char *what, manifest **out, char **err);

/* Frees the file lists of n shards (not the shards themselves). */
void manifest_shards_free_files(manifest_shard *s, size_t n);

void manifest_free(manifest *m);

#endif
