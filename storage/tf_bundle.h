/* TensorFlow tensor bundles (tf.train.Checkpoint / Saver V2): the format
 * Google's BERT checkpoints ship in, read in C without TensorFlow.
 * PREFIX.index is a table in LevelDB's SSTable format (data blocks with
 * prefix-compressed keys and restart points, a metaindex and an index block,
 * a 48-byte footer ending in the magic 0xdb4775248b80fb57; each block
 * followed by a type byte and a masked CRC32C). Its key "" holds a
 * BundleHeaderProto; every other key is a tensor name whose value is a
 * BundleEntryProto (dtype, shape, shard_id, offset, size, crc32c).
 * PREFIX.data-0000S-of-0000N hold the raw little-endian tensor bytes.
 *
 * Conventions:
 *  1. Statuses and messages as util/status.h; messages name the file and,
 *     where one is at fault, the tensor.
 *  2. tfb_open checks the whole index before handing out anything: the
 *     footer and magic, every block's CRC32C (compressed blocks are refused:
 *     TensorFlow writes bundles uncompressed), restart points on entries
 *     that store a whole key, data blocks in file order without overlap,
 *     the first key "" (the header) and then keys in strictly increasing
 *     order, each inside its block's index key, protobuf fields within
 *     bounds, num_shards in 1..TFB_SHARDS_MAX, shard_id below it, each
 *     entry's byte size equal to prod(shape) * dtype size, and each
 *     (offset, size) inside its data file. Refused with a clear message:
 *     entries with slices (partitioned variables) and keys holding control
 *     bytes (the slice keys), big-endian bundles, a bundle format newer than
 *     version 1, shapes of unknown rank or dimension, more than
 *     CKPT_NDIM_MAX dimensions.
 *  3. Entries of DT_STRING, DT_VARIANT, DT_RESOURCE, the packed 4-bit types
 *     and dtype numbers this reader does not know are kept and listed (with
 *     their number in dtype) but their byte size is not checked against the
 *     shape, only against the data file: their encoding is variable or
 *     unknown here. They cannot be read.
 *  4. Reading a tensor checks its CRC32C against the entry.
 *  5. Values reach callers as float32: DT_FLOAT verbatim, DT_HALF and
 *     DT_BFLOAT16 widened exactly, DT_DOUBLE rounded to nearest. Other
 *     dtypes (global_step's DT_INT64) are listed but not readable as float.
 *  6. Statuses: ST_CORRUPT for bytes that break the format or a checksum,
 *     ST_INVALID for valid bundles this reader does not take (above),
 *     ST_IO for files that cannot be opened or read, ST_NOMEM.
 */
#ifndef DDPT_STORAGE_TF_BUNDLE_H
#define DDPT_STORAGE_TF_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "storage/ckpt.h"

/* TensorFlow DataType enum values that matter here (types.proto). */
enum {
  TFB_DT_FLOAT = 1, TFB_DT_DOUBLE = 2, TFB_DT_INT32 = 3, TFB_DT_INT64 = 9,
  TFB_DT_BFLOAT16 = 14, TFB_DT_HALF = 19,
};

enum { TFB_SHARDS_MAX = 65536 }; /* num_shards above this is refused */

/* "DT_FLOAT", "DT_INT64", ... for types.proto's numbers 0..23 (DT_UINT64);
 * "an unknown dtype" for any other. Never NULL. */
const char *tfb_dtype_name(int dtype);

typedef struct tfb_entry {
  char *name;   /* "bert/encoder/layer_0/attention/self/query/kernel" */
  int dtype;    /* TFB_DT_* (other TF dtypes are kept as their number) */
  int ndim;     /* 0 (a scalar) .. CKPT_NDIM_MAX */
  size_t shape[CKPT_NDIM_MAX];
  size_t count; /* elements */
  uint32_t shard;
  uint64_t offset, size; /* bytes in the shard's data file */
  uint32_t crc32c;       /* masked, as stored */
} tfb_entry;

/* Parses and checks an .index file's bytes (convention 2, less the data
 * file bounds): the pure part, which the fuzzer drives. *entries is a
 * malloc'd array of *n in key order (the header entry excluded), freed with
 * tfb_entries_free; *num_shards is the header's. */
int tfb_index_parse(const uint8_t *buf, size_t len, const char *what, tfb_entry **entries,
                    size_t *n, uint32_t *num_shards, char **err);
void tfb_entries_free(tfb_entry *e, size_t n);

typedef struct tfb_bundle tfb_bundle;
/* prefix: "path/bert_model.ckpt" (a trailing ".index" is accepted). */
int tfb_open(const char *prefix, tfb_bundle **out, char **err);
void tfb_close(tfb_bundle *b);

size_t tfb_count(const tfb_bundle *b);
const tfb_entry *tfb_entry_at(const tfb_bundle *b, size_t i);
long tfb_find(const tfb_bundle *b, const char *name); /* -1 if absent */
/* Reads entry i into dst (count floats), checking its CRC32C. ST_INVALID
 * for a dtype not readable as float; on failure dst's contents are
 * unspecified. */
int tfb_read_f32(tfb_bundle *b, size_t i, float *dst, char **err);

#endif
