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
#define RECORD_FLAG_CLASS 0x08       /* labelled: one class label (int16 LE) after the ids */
#define RECORD_FLAG_TAGS 0x10        /* labelled: n tag labels (int16 LE) after the ids */

#define RECORD_IGNORE_LABEL (-100) /* a position without a tag (HuggingFace's ignore_index) */
#define RECORD_MAX_LABELS 32767    /* label ids are int16 on disk */

/* What a record carries besides its ids (flags CLASS and TAGS). */
typedef enum { RECORD_PLAIN, RECORD_CLASS, RECORD_TAGS } record_kind;

typedef struct record {
  const int32_t *ids; /* (n) on encode: the caller's; on decode: see record_decode */
  size_t n;
  size_t split; /* tokens in segment A; n when the record is not a pair */
  int pair;
  int random_next;
  record_kind kind;
  int32_t label;       /* RECORD_CLASS: the class label id */
  const int32_t *tags; /* RECORD_TAGS: (n) a label id or RECORD_IGNORE_LABEL per position */
} record;

/* Bytes record_encode writes for n ids of id_bytes (2 or 4) each, without
 * labels; record_labels_size adds what a labelled record carries. */
size_t record_encoded_size(size_t n, int id_bytes);
size_t record_labels_size(record_kind kind, size_t n);

/* Writes rec into out (record_encoded_size + record_labels_size bytes).
 * Every id must fit in id_bytes unsigned, every label in [0,
 * RECORD_MAX_LABELS) (tags also RECORD_IGNORE_LABEL); asserts otherwise, as
 * does n > RECORD_MAX_TOKENS. */
void record_encode(const record *rec, int id_bytes, uint8_t *out);

/* Decodes len bytes into rec, writing the ids into ids and, for a tag
 * record, the tags into tags (each with room for max_n). ST_CORRUPT with a
 * message naming what is wrong (version, flags, length, split, a count over
 * max_n, an id width other than id_bytes, a negative label) otherwise. The
 * message does not name the shard or key: the caller adds them. */
int record_decode(const uint8_t *buf, size_t len, int id_bytes, int32_t *ids, int32_t *tags,
                  size_t max_n, record *rec, char **err);

#endif
