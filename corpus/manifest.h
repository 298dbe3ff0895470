/* manifest.json: what a corpus directory holds. ddpt shard writes it last
 * and atomically, so a directory without it is an incomplete corpus, and
 * every reader refuses it. */
#ifndef DDPT_CORPUS_MANIFEST_H
#define DDPT_CORPUS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define MANIFEST_FILE "manifest.json"
#define MANIFEST_FORMAT "ddpt-corpus"
#define MANIFEST_VERSION 1
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

typedef struct manifest_shard {
  char name[32]; /* directory inside the corpus: "shard-00003", "valid-00000" */
  uint64_t sequences, tokens;
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

/* Reads and checks dir/manifest.json. *out is malloc'd; free it with
 * manifest_free. A directory without the file is reported as an incomplete
 * corpus (ST_INVALID). */
int manifest_read(const char *dir, manifest **out, char **err);

void manifest_free(manifest *m);

#endif
