/* One shard (a LevelDB database of records under dense big-endian keys)
 * opened for reading: random access by index, and a full check for
 * `ddpt corpus verify`. LevelDB's types stay inside shard_reader.c. */
#ifndef DDPT_CORPUS_SHARD_READER_H
#define DDPT_CORPUS_SHARD_READER_H

#include <stdint.h>

#include "corpus/manifest.h"
#include "corpus/record.h"

typedef struct shard_reader shard_reader;

/* Opens the database at path, which the manifest says holds n records of at
 * most seq_len ids, id_bytes each. On success *out owns the handle; close it
 * with shard_reader_close. LevelDB locks a database per process: two
 * processes cannot hold the same shard open. */
int shard_reader_open(const char *path, uint64_t n, size_t seq_len, int id_bytes,
                      shard_reader **out, char **err);
void shard_reader_close(shard_reader *r); /* NULL is a no-op */

/* Reads record index (< n) into ids (room for seq_len); rec->ids points at
 * ids, rec->tags (a tag record) into the reader, valid until the next call.
 * Errors name the shard and key: missing (ST_CORRUPT), malformed
 * (ST_CORRUPT), unreadable (ST_IO). */
int shard_reader_get(shard_reader *r, uint64_t index, int32_t *ids, record *rec, char **err);

/* Reads every record in key order and checks that the keys are exactly
 * 0..n-1, that each record decodes, that every id is below m's vocab size,
 * and that it fits m's task (record_check_task). Adds up the tokens into
 * *tokens. The first failure names shard and key. */
int shard_reader_verify(shard_reader *r, const manifest *m, uint64_t *tokens, char **err);

/* ST_CORRUPT unless rec is what a corpus of m's task holds: a plain record
 * (pretrain), a class label below m's number of labels (classify), or tags
 * each below it or RECORD_IGNORE_LABEL (tag). The message names neither
 * shard nor key. */
int record_check_task(const record *rec, const manifest *m, char **err);

/* The 8-byte big-endian key of index. */
void shard_key_encode(uint64_t index, uint8_t key[8]);

#endif
