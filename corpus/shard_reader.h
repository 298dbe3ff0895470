/* One finished shard read without LevelDB: its table files (.ldb), as the
 * manifest lists them, opened read-only. No lock is taken and nothing is
 * written, so any number of processes read one shard at once, also from a
 * read-only filesystem. Random access by index, a full check for
 * `ddpt corpus verify`, and the description of a shard's files that
 * `ddpt shard` writes into the manifest. docs/corpus.md says why. */
#ifndef DDPT_CORPUS_SHARD_READER_H
#define DDPT_CORPUS_SHARD_READER_H

#include <stdint.h>

#include "corpus/manifest.h"
#include "corpus/record.h"

typedef struct shard_reader shard_reader;

/* Opens shard s of the corpus in dir, whose manifest is m: each file s
 * lists is opened read-only, its size compared with the manifest's and its
 * index read. On success *out owns the handle; close it with
 * shard_reader_close. A file missing, of another size or not a table is
 * ST_CORRUPT naming the shard and the file. */
int shard_reader_open(const char *dir, const manifest *m, const manifest_shard *s,
                      shard_reader **out, char **err);
void shard_reader_close(shard_reader *r); /* NULL is a no-op */

/* Reads record index (< n) into ids (room for seq_len); rec->ids points at
 * ids, rec->tags (a tag record) into the reader, valid until the next call.
 * Errors name the shard and key: missing
 * or malformed (ST_CORRUPT), unreadable (ST_IO), and a file of the shard
 * that changed since open (ST_CORRUPT): each block read is followed by an
 * fstat of its file, and the files' paths are stat'ed at most once a
 * second, so a reader never uses bytes of a changed file. */
int shard_reader_get(shard_reader *r, uint64_t index, int32_t *ids, record *rec, char **err);

/* Stats every file of the shard now: ST_CORRUPT naming the shard and the
 * file when one was replaced, appended to or written since open. */
int shard_reader_check(shard_reader *r, char **err);

/* Reads every file whole: each block's CRC32C, keys exactly 0..n-1 in
 * order, each record decoded, every id below m's vocab size, the record
 * fitting m's task (record_check_task), then each file's CRC32C against
 * the manifest's. Adds up the tokens into *tokens. The first failure names
 * shard, file and key or block. */
int shard_reader_verify(shard_reader *r, const manifest *m, uint64_t *tokens, char **err);

/* ST_CORRUPT unless rec is what a corpus of m's task holds: a plain record
 * (pretrain), a class label below m's number of labels (classify), or tags
 * each below it or RECORD_IGNORE_LABEL (tag). The message names neither
 * shard nor key. */
int record_check_task(const record *rec, const manifest *m, char **err);

/* Describes the finished (compacted and closed) LevelDB database at path,
 * whose records are s's: s->files gets every table file (.ldb) in key
 * order with its size, CRC32C and keys (malloc'd; manifest_shards_free_files
 * frees it). Its keys must be exactly 0..s->sequences-1. */
int shard_files_describe(const char *path, manifest_shard *s, char **err);

/* The 8-byte big-endian key of index. */
void shard_key_encode(uint64_t index, uint8_t key[8]);

#endif
