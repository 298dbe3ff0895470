/* The value stored under each key of a shard: one packed sequence of token
 * ids with its segment split and flags, versioned and length-checked. The
 * byte layout is documented in docs/corpus.md; python decoders follow it. */
#ifndef DDPT_CORPUS_RECORD_H
#define DDPT_CORPUS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define RECORD_VERSION 1
#define RECORD_HEADER_BYTES 6
#define RECORD_MAX_TOKENS 65535

/* Flag bits (byte 1 of a record). */
#define RECORD_FLAG_PAIR 0x01        /* two segments: A = [0, split), B = [split, n) */
#define RECORD_FLAG_RANDOM_NEXT 0x02 /* NSP: segment B comes from another document */
#define RECORD_FLAG_IDS32 0x04       /* ids are 32-bit (else 16-bit) little-endian */

typedef struct record {
  const int32_t *ids; /* (n) on encode: the caller's; on decode: see record_decode */
  size_t n;
  size_t split; /* tokens in segment A; n when the record is not a pair */
  int pair;
  int random_next;
} record;

/* Bytes record_encode writes for n ids of id_bytes (2 or 4) each. */
size_t record_encoded_size(size_t n, int id_bytes);

/* Writes rec into out (record_encoded_size bytes). Every id must fit in
 * id_bytes unsigned; asserts otherwise, as does n > RECORD_MAX_TOKENS. */
void record_encode(const record *rec, int id_bytes, uint8_t *out);

/* Decodes len bytes into rec, writing the ids into ids (room for max_n).
 * ST_CORRUPT with a message naming what is wrong (version, flags, length,
 * split, a count over max_n, an id width other than id_bytes) otherwise. The
 * message does not name the shard or key: the caller adds them. */
int record_decode(const uint8_t *buf, size_t len, int id_bytes, int32_t *ids, size_t max_n,
                  record *rec, char **err);

#endif
