/* LevelDB's table format ("SSTable", leveldb/doc/table_format.md) read by
 * hand: the footer, block handles, the 5-byte block trailer (compression
 * type, masked CRC32C) and the prefix-compressed entries of a block. Both
 * TensorFlow bundle indexes (storage/tf_bundle.c) and the corpus's shards
 * (corpus/shard_reader.c) are such tables.
 *
 * Conventions:
 *  1. `what` names the file; every message starts with it and names the
 *     block (kind, offset) and what is wrong. Damage is ST_CORRUPT.
 *  2. A block in memory is its bytes without the trailer; sstable_block_check
 *     takes them with the trailer that follows.
 *  3. Varint and handle readers return the byte after what they read, or
 *     NULL when it is malformed or runs past end.
 */
#ifndef DDPT_UTIL_SSTABLE_H
#define DDPT_UTIL_SSTABLE_H

#include <stddef.h>
#include <stdint.h>

enum {
  SSTABLE_FOOTER_LEN = 48,  /* two block handles padded to 40 bytes, then the magic */
  SSTABLE_TRAILER_LEN = 5,  /* after each block: compression type, masked CRC32C */
  SSTABLE_NO_COMPRESSION = 0,
  SSTABLE_SNAPPY = 1,
};
#define SSTABLE_MAGIC 0xdb4775248b80fb57ull

static inline uint32_t sstable_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t sstable_le64(const uint8_t *p) {
  return (uint64_t)sstable_le32(p) | (uint64_t)sstable_le32(p + 4) << 32;
}

/* A base-128 varint of at most max_bytes bytes (5 for 32-bit fields, 10 for
 * 64-bit ones). */
const uint8_t *sstable_varint(const uint8_t *p, const uint8_t *end, int max_bytes, uint64_t *v);
const uint8_t *sstable_varint32(const uint8_t *p, const uint8_t *end, uint32_t *v);

typedef struct sstable_handle {
  uint64_t offset, size; /* size without the trailer */
} sstable_handle;

const uint8_t *sstable_handle_get(const uint8_t *p, const uint8_t *end, sstable_handle *h);

/* The last SSTABLE_FOOTER_LEN bytes of a table: its magic and the handles
 * of the metaindex and index blocks. */
int sstable_footer_parse(const uint8_t *footer, const char *what, sstable_handle *meta,
                         sstable_handle *index, char **err);

/* raw holds the block at offset (size bytes) and its trailer: checks the
 * CRC32C over the bytes and the type, and gives the compression type. */
int sstable_block_check(const uint8_t *raw, uint64_t size, uint64_t offset, const char *kind,
                        const char *what, int *type, char **err);

typedef struct sstable_block {
  const char *kind; /* "index", "metaindex", "data" */
  uint64_t offset;
  const uint8_t *data;
  size_t len; /* without the trailer */
} sstable_block;

/* Walks a block's entries in order: each is varint32 shared, non_shared,
 * value_len, then the key bytes after the shared prefix of the previous
 * key, then the value. The block ends in uint32 restart offsets and their
 * uint32 count; a restart is where an entry stores its whole key, so each
 * must fall on an entry with shared = 0. */
typedef struct sstable_iter {
  const sstable_block *b;
  size_t limit; /* where the restart array starts */
  uint32_t n_restarts, next_restart;
  size_t pos;
  uint8_t *key; /* (len + 1), a key never being longer than its block */
  size_t key_len;
  const uint8_t *value;
  size_t value_len;
} sstable_iter;

/* Checks the restart array; the iterator owns a key buffer, released by
 * sstable_iter_free (also after a failed init). */
int sstable_iter_init(sstable_iter *it, const sstable_block *b, const char *what, char **err);
void sstable_iter_free(sstable_iter *it);
/* *more = 1 with the next entry in it->key and it->value, 0 past the last. */
int sstable_iter_next(sstable_iter *it, const char *what, int *more, char **err);

/* Bytewise order of two keys, LevelDB's default comparator. */
int sstable_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
