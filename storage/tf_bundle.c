/* TensorFlow tensor bundles (see tf_bundle.h): the .index SSTable walked
 * block by block and its protobuf values decoded by hand, then tensors read
 * from the data shards with their CRC32C checked. */
#include "storage/tf_bundle.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/array.h"
#include "util/crc32c.h"
#include "util/file.h"
#include "util/half.h"
#include "util/sstable.h"
#include "util/status.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "tensor bytes are copied as they lie in the file: little-endian hosts only");

enum { TFB_BUNDLE_VERSION = 1 }; /* the bundle format version this reader implements */
/* An .index holds a few hundred bytes per tensor: a file past this is not one. */
#define TFB_INDEX_MAX ((size_t)1 << 30)

/* ----------------------------------------------------------- dtypes */

/* Bytes per element of TensorFlow's fixed-size dtypes (types.proto); 0 for
 * DT_STRING, DT_RESOURCE, DT_VARIANT (variable-length encodings), the
 * packed 4-bit types and numbers this reader does not know. */
static size_t tfb_dtype_size(int dtype) {
  switch (dtype) {
  case 1: case 3: case 13: case 22: return 4;                /* FLOAT, INT32, QINT32, UINT32 */
  case 2: case 8: case 9: case 23: return 8;                 /* DOUBLE, COMPLEX64, INT64, UINT64 */
  case 4: case 6: case 10: case 11: case 12: return 1;       /* UINT8, INT8, BOOL, QINT8, QUINT8 */
  case 5: case 14: case 15: case 16: case 17: case 19: return 2; /* INT16, BF16, QINT(16), UINT16, HALF */
  case 18: return 16;                                        /* COMPLEX128 */
  case 24: case 25: case 26: case 27: case 28: return 1;     /* the FLOAT8 variants */
  default: return 0;
  }
}

const char *tfb_dtype_name(int dtype) {
  static const char *const names[] = {
      "DT_INVALID", "DT_FLOAT", "DT_DOUBLE", "DT_INT32", "DT_UINT8", "DT_INT16", "DT_INT8", "DT_STRING",
      "DT_COMPLEX64", "DT_INT64", "DT_BOOL", "DT_QINT8", "DT_QUINT8", "DT_QINT32", "DT_BFLOAT16", "DT_QINT16",
      "DT_QUINT16", "DT_UINT16", "DT_COMPLEX128", "DT_HALF", "DT_RESOURCE", "DT_VARIANT", "DT_UINT32", "DT_UINT64"};
  if (dtype >= 0 && (size_t)dtype < sizeof names / sizeof *names) return names[dtype];
  return "an unknown dtype";
}

static int tfb_dtype_is_float(int dtype) {
  return dtype == TFB_DT_FLOAT || dtype == TFB_DT_DOUBLE || dtype == TFB_DT_HALF || dtype == TFB_DT_BFLOAT16;
}

/* ----------------------------------------------------------- encodings */

/* Protobuf wire format, just what BundleHeaderProto and BundleEntryProto
 * use: a field is a tag varint (number << 3 | wire type) then a varint (0),
 * 8 bytes (1), a length-delimited run (2) or 4 bytes (5). Groups (3, 4)
 * are long deprecated and never written by TensorFlow: refused. */
typedef struct pb_field {
  uint32_t number;
  int wire;
  uint64_t value;     /* wire 0, 1, 5 */
  const uint8_t *run; /* wire 2 */
  size_t run_len;
} pb_field;

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

/* 1 with the next field in *f, 0 at the end of the message, -1 on bytes
 * that are not a well-formed field. */
static int pb_next(const uint8_t **p, const uint8_t *end, pb_field *f) {
  if (*p == end) return 0;
  uint64_t tag, len;
  const uint8_t *q = sstable_varint(*p, end, 10, &tag);
  if (!q || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffffu) return -1;
  f->number = (uint32_t)(tag >> 3);
  f->wire = (int)(tag & 7u);
  switch (f->wire) {
  case PB_VARINT: q = sstable_varint(q, end, 10, &f->value); break;
  case PB_FIXED64:
    if (end - q < 8) return -1;
    f->value = sstable_le64(q), q += 8;
    break;
  case PB_FIXED32:
    if (end - q < 4) return -1;
    f->value = sstable_le32(q), q += 4;
    break;
  case PB_LEN:
    q = sstable_varint(q, end, 10, &len);
    if (!q || len > (uint64_t)(end - q)) return -1;
    f->run = q, f->run_len = (size_t)len, q += len;
    break;
  default: return -1;
  }
  if (!q) return -1;
  *p = q;
  return 1;
}

/* ----------------------------------------------------------- messages */

/* The one line that says a tensor's shape: "[768, 3072]". */
static void shape_format(const tfb_entry *e, char *out, size_t cap) {
  size_t n = (size_t)snprintf(out, cap, "[");
  for (int d = 0; d < e->ndim && n < cap; d++)
    n += (size_t)snprintf(out + n, cap - n, "%s%zu", d ? ", " : "", e->shape[d]);
  if (n < cap) snprintf(out + n, cap - n, "]");
}

/* ----------------------------------------------------------- protobuf values */

/* BundleHeaderProto's VersionDef: TensorFlow's CheckVersions for bundle
 * version 1 refuses producer < 0, min_consumer > 1 and a bad_consumers
 * list naming 1. */
static int version_check(const uint8_t *p, const uint8_t *end, const char *what, char **err) {
  pb_field f;
  int rc;
  while ((rc = pb_next(&p, end, &f)) > 0) {
    int32_t v = (int32_t)(uint32_t)f.value;
    if (f.number == 1 && f.wire == PB_VARINT && v < 0)
      return status_set(err, ST_CORRUPT, "%s: the bundle header's producer version is %d (negative)", what, v);
    if (f.number == 2 && f.wire == PB_VARINT && v > TFB_BUNDLE_VERSION)
      return status_set(err, ST_INVALID,
                        "%s: written in bundle format version %d or later, which this reader (version %d) "
                        "does not know; re-save the checkpoint with an older TensorFlow",
                        what, v, TFB_BUNDLE_VERSION);
    int bad_listed = f.number == 3 && f.wire == PB_VARINT && v == TFB_BUNDLE_VERSION;
    if (f.number == 3 && f.wire == PB_LEN) /* packed */
      for (const uint8_t *q = f.run, *qend = f.run + f.run_len; q < qend;) {
        uint64_t bad;
        if (!(q = sstable_varint(q, qend, 10, &bad)))
          return status_set(err, ST_CORRUPT, "%s: the bundle header's version is malformed", what);
        bad_listed |= (int32_t)(uint32_t)bad == TFB_BUNDLE_VERSION;
      }
    if (bad_listed)
      return status_set(err, ST_INVALID, "%s: the bundle header lists version %d, this reader's, as a bad consumer",
                        what, TFB_BUNDLE_VERSION);
  }
  if (rc < 0) return status_set(err, ST_CORRUPT, "%s: the bundle header's version is malformed", what);
  return ST_OK;
}

/* Key "": BundleHeaderProto {num_shards = 1, endianness = 2, version = 3}. */
static int header_decode(const uint8_t *p, size_t len, const char *what, uint32_t *num_shards, char **err) {
  const uint8_t *end = p + len;
  int32_t shards = 0;
  pb_field f;
  int rc;
  while ((rc = pb_next(&p, end, &f)) > 0) {
    if (f.number == 1 && f.wire == PB_VARINT) {
      shards = (int32_t)(uint32_t)f.value;
    } else if (f.number == 2 && f.wire == PB_VARINT) {
      if (f.value == 1)
        return status_set(err, ST_INVALID,
                          "%s: a big-endian bundle (saved on a big-endian machine), which ddpt does not read; "
                          "re-save it on a little-endian one",
                          what);
      if (f.value != 0)
        return status_set(err, ST_CORRUPT, "%s: the bundle header's endianness is %llu (neither 0 nor 1)", what,
                          (unsigned long long)f.value);
    } else if (f.number == 3 && f.wire == PB_LEN) {
      int vrc = version_check(f.run, f.run + f.run_len, what, err);
      if (vrc != ST_OK) return vrc;
    } else if (f.number <= 3) {
      rc = -1;
      break;
    }
  }
  if (rc < 0) return status_set(err, ST_CORRUPT, "%s: the bundle header (key \"\") is not a valid protobuf", what);
  if (shards < 1 || shards > TFB_SHARDS_MAX)
    return status_set(err, ST_CORRUPT, "%s: the bundle header says num_shards = %d (1..%d expected)", what,
                      (int)shards, TFB_SHARDS_MAX);
  *num_shards = (uint32_t)shards;
  return ST_OK;
}

/* TensorShapeProto {dim = 2 (repeated Dim {size = 1, name = 2}),
 * unknown_rank = 3}; dims append to e, as protobuf merges a repeated
 * embedded message. */
static int shape_decode(const uint8_t *p, const uint8_t *end, const char *what, tfb_entry *e, char **err) {
  pb_field f, g;
  int rc;
  while ((rc = pb_next(&p, end, &f)) > 0) {
    if (f.number == 2 && f.wire == PB_LEN) {
      if (e->ndim == CKPT_NDIM_MAX)
        return status_set(err, ST_INVALID, "%s: tensor %s has more than %d dimensions, which ddpt does not read",
                          what, e->name, CKPT_NDIM_MAX);
      const uint8_t *q = f.run, *qend = f.run + f.run_len;
      int64_t size = 0;
      int drc;
      while ((drc = pb_next(&q, qend, &g)) > 0) {
        if (g.number == 1 && g.wire == PB_VARINT) size = (int64_t)g.value;
        else if (g.number == 1) drc = -1;
        if (drc < 0) break;
      }
      if (drc < 0) {
        rc = -1;
        break;
      }
      if (size < 0)
        return status_set(err, ST_CORRUPT, "%s: tensor %s: dimension %d has size %lld (unknown)", what, e->name,
                          e->ndim, (long long)size);
      e->shape[e->ndim++] = (size_t)size;
    } else if (f.number == 3 && f.wire == PB_VARINT) {
      if (f.value != 0)
        return status_set(err, ST_CORRUPT, "%s: tensor %s has a shape of unknown rank", what, e->name);
    } else if (f.number == 2 || f.number == 3) {
      rc = -1;
      break;
    }
  }
  if (rc < 0) return status_set(err, ST_CORRUPT, "%s: tensor %s: its shape is not a valid protobuf", what, e->name);
  return ST_OK;
}

/* Any other key: BundleEntryProto {dtype = 1, shape = 2, shard_id = 3,
 * offset = 4, size = 5, crc32c = 6 (fixed32), slices = 7}. e->name is set. */
static int entry_decode(const uint8_t *p, size_t len, const char *what, uint32_t num_shards, tfb_entry *e,
                        char **err) {
  const uint8_t *end = p + len;
  int64_t shard = 0, offset = 0, size = 0;
  pb_field f;
  int rc, src;
  while ((rc = pb_next(&p, end, &f)) > 0) {
    int want = f.number == 2 || f.number == 7 ? PB_LEN : f.number == 6 ? PB_FIXED32 : PB_VARINT;
    if (f.number <= 7 && f.wire != want) {
      rc = -1;
      break;
    }
    switch (f.number) {
    case 1: e->dtype = (int32_t)(uint32_t)f.value; break;
    case 2:
      if ((src = shape_decode(f.run, f.run + f.run_len, what, e, err)) != ST_OK) return src;
      break;
    case 3: shard = (int32_t)(uint32_t)f.value; break;
    case 4: offset = (int64_t)f.value; break;
    case 5: size = (int64_t)f.value; break;
    case 6: e->crc32c = (uint32_t)f.value; break;
    case 7:
      return status_set(err, ST_INVALID,
                        "%s: tensor %s is a partitioned variable saved in slices, which ddpt does not read; "
                        "re-save it unpartitioned",
                        what, e->name);
    default: break; /* a field from a later TensorFlow: skipped, as protobuf does */
    }
  }
  if (rc < 0) return status_set(err, ST_CORRUPT, "%s: tensor %s: its entry is not a valid protobuf", what, e->name);
  if (e->dtype == 0) return status_set(err, ST_CORRUPT, "%s: tensor %s has no dtype (DT_INVALID)", what, e->name);
  if (shard < 0 || shard >= (int64_t)num_shards)
    return status_set(err, ST_CORRUPT, "%s: tensor %s is in shard %lld, but the bundle has %u", what, e->name,
                      (long long)shard, num_shards);
  if (offset < 0 || size < 0)
    return status_set(err, ST_CORRUPT, "%s: tensor %s has a negative offset (%lld) or size (%lld)", what, e->name,
                      (long long)offset, (long long)size);
  e->shard = (uint32_t)shard;
  e->offset = (uint64_t)offset;
  e->size = (uint64_t)size;
  e->count = 1;
  char shape[CKPT_NDIM_MAX * 24 + 4];
  for (int d = 0; d < e->ndim; d++)
    if (__builtin_mul_overflow(e->count, e->shape[d], &e->count)) {
      shape_format(e, shape, sizeof shape);
      return status_set(err, ST_CORRUPT, "%s: tensor %s: shape %s has more elements than memory can address",
                        what, e->name, shape);
    }
  size_t elem = tfb_dtype_size(e->dtype);
  uint64_t need;
  if (elem && (__builtin_mul_overflow((uint64_t)e->count, (uint64_t)elem, &need) || need != e->size)) {
    shape_format(e, shape, sizeof shape);
    return status_set(err, ST_CORRUPT, "%s: tensor %s: %s of shape %s needs %zu x %zu bytes, but the entry says %llu",
                      what, e->name, tfb_dtype_name(e->dtype), shape, e->count, elem, (unsigned long long)e->size);
  }
  return ST_OK;
}

/* ----------------------------------------------------------- SSTable blocks */

/* Loads the block at h of buf[0..limit): inside the table, its CRC32C
 * right, uncompressed. */
static int block_load(const uint8_t *buf, size_t limit, sstable_handle h, const char *kind,
                      const char *what, sstable_block *b, char **err) {
  b->kind = kind;
  b->offset = h.offset;
  if (h.offset > limit || h.size > limit - h.offset || SSTABLE_TRAILER_LEN > limit - h.offset - h.size)
    return status_set(err, ST_CORRUPT,
                      "%s: the %s block at offset %llu (%llu bytes) runs past the table's end (%zu): truncated?",
                      what, kind, (unsigned long long)h.offset, (unsigned long long)h.size, limit);
  b->data = buf + h.offset;
  b->len = (size_t)h.size;
  int type, rc = sstable_block_check(b->data, h.size, h.offset, kind, what, &type, err);
  if (rc != ST_OK) return rc;
  if (type == SSTABLE_SNAPPY)
    return status_set(err, ST_INVALID,
                      "%s: the %s block at offset %llu is snappy-compressed; snappy-compressed blocks are not "
                      "supported (TensorFlow writes bundles uncompressed)",
                      what, kind, (unsigned long long)h.offset);
  if (type != SSTABLE_NO_COMPRESSION)
    return status_set(err, ST_CORRUPT, "%s: the %s block at offset %llu has unknown compression type %u", what,
                      kind, (unsigned long long)h.offset, type);
  return ST_OK;
}

/* ----------------------------------------------------------- the index */

/* What the walk over the data blocks carries from entry to entry. */
typedef struct index_walk {
  const char *what;
  uint8_t *prev; /* the previous key (cap prev_cap), prev_len bytes */
  size_t prev_len, prev_cap;
  int seen_header;
  uint32_t num_shards;
  tfb_entry *entries;
  size_t n, cap;
} index_walk;

/* Checks one key against the order and the block's index key, then
 * decodes its value: the header or one tensor entry. */
static int index_walk_entry(index_walk *w, const sstable_iter *it, size_t block_no, const uint8_t *sep,
                            size_t sep_len, char **err) {
  const char *key = (const char *)it->key;
  for (size_t i = 0; i < it->key_len; i++)
    if (it->key[i] < 0x20 || it->key[i] == 0x7f)
      return status_set(err, ST_INVALID,
                        "%s: key %zu holds byte 0x%02x: not a tensor name (a slice of a partitioned variable?), "
                        "which ddpt does not read",
                        w->what, w->n + 1, it->key[i]);
  if (!w->seen_header && it->key_len != 0)
    return status_set(err, ST_CORRUPT, "%s: the first key is \"%s\", not the bundle header (key \"\")", w->what, key);
  if (w->seen_header && sstable_key_cmp(it->key, it->key_len, w->prev, w->prev_len) <= 0)
    return status_set(err, ST_CORRUPT, "%s: keys out of order: \"%s\" after \"%.*s\"", w->what, key,
                      (int)w->prev_len, (const char *)w->prev);
  if (sstable_key_cmp(it->key, it->key_len, sep, sep_len) > 0)
    return status_set(err, ST_CORRUPT, "%s: key \"%s\" in data block %zu lies beyond that block's index key", w->what,
                      key, block_no);
  if (array_grow(&w->prev, &w->prev_cap, it->key_len + 1, 1) != ST_OK)
    return status_set(err, ST_NOMEM, "%s: out of memory reading the index", w->what);
  memcpy(w->prev, it->key, it->key_len);
  w->prev_len = it->key_len;

  if (!w->seen_header) {
    w->seen_header = 1;
    return header_decode(it->value, it->value_len, w->what, &w->num_shards, err);
  }
  if (array_grow(&w->entries, &w->cap, w->n + 1, sizeof *w->entries) != ST_OK)
    return status_set(err, ST_NOMEM, "%s: out of memory reading the index", w->what);
  tfb_entry *e = &w->entries[w->n];
  memset(e, 0, sizeof *e);
  if (!(e->name = malloc(it->key_len + 1)))
    return status_set(err, ST_NOMEM, "%s: out of memory reading the index", w->what);
  memcpy(e->name, key, it->key_len + 1);
  w->n++;
  return entry_decode(it->value, it->value_len, w->what, w->num_shards, e, err);
}

/* Walks the entries of the data block at (offset, size) whose index key is
 * sep. */
static int index_walk_block(index_walk *w, const uint8_t *buf, size_t limit, sstable_handle h, size_t block_no,
                            const uint8_t *sep, size_t sep_len, char **err) {
  sstable_block b;
  sstable_iter it;
  int rc = block_load(buf, limit, h, "data", w->what, &b, err);
  if (rc != ST_OK) return rc;
  if ((rc = sstable_iter_init(&it, &b, w->what, err)) != ST_OK) return rc;
  size_t entries = 0;
  int more;
  while ((rc = sstable_iter_next(&it, w->what, &more, err)) == ST_OK && more) {
    if ((rc = index_walk_entry(w, &it, block_no, sep, sep_len, err)) != ST_OK) break;
    entries++;
  }
  sstable_iter_free(&it);
  if (rc == ST_OK && entries == 0)
    rc = status_set(err, ST_CORRUPT, "%s: data block %zu (offset %llu) holds no entries", w->what, block_no,
                    (unsigned long long)h.offset);
  return rc;
}

/* Checks that a block (the metaindex, whose entries TensorFlow never uses)
 * is well formed throughout. */
static int block_walk_all(const sstable_block *b, const char *what, char **err) {
  sstable_iter it;
  int rc = sstable_iter_init(&it, b, what, err), more = 1;
  while (rc == ST_OK && more) rc = sstable_iter_next(&it, what, &more, err);
  sstable_iter_free(&it); /* init zeroes it first, so this holds on its failure too */
  return rc;
}

void tfb_entries_free(tfb_entry *e, size_t n) {
  if (!e) return;
  for (size_t i = 0; i < n; i++) free(e[i].name);
  free(e);
}

int tfb_index_parse(const uint8_t *buf, size_t len, const char *what, tfb_entry **entries, size_t *n,
                    uint32_t *num_shards, char **err) {
  assert(buf || len == 0);
  index_walk w = {.what = what};
  sstable_iter index_it = {0};
  sstable_block meta, index;
  sstable_handle meta_h, index_h;
  int rc;
  if (len < SSTABLE_FOOTER_LEN)
    return status_set(err, ST_CORRUPT, "%s: %zu bytes, shorter than a table footer (48): not a bundle .index file",
                      what, len);
  if ((rc = sstable_footer_parse(buf + len - SSTABLE_FOOTER_LEN, what, &meta_h, &index_h, err)) != ST_OK)
    return rc;
  size_t limit = len - SSTABLE_FOOTER_LEN;
  if ((rc = block_load(buf, limit, meta_h, "metaindex", what, &meta, err)) != ST_OK ||
      (rc = block_walk_all(&meta, what, err)) != ST_OK ||
      (rc = block_load(buf, limit, index_h, "index", what, &index, err)) != ST_OK ||
      (rc = sstable_iter_init(&index_it, &index, what, err)) != ST_OK)
    goto fail;

  /* Data blocks lie in file order without overlap, as TableBuilder writes
   * them: the walk reads each byte of the file once however the index is
   * damaged. */
  uint64_t data_end = 0;
  size_t block_no = 0;
  int more;
  while ((rc = sstable_iter_next(&index_it, what, &more, err)) == ST_OK && more) {
    sstable_handle h;
    const uint8_t *v = index_it.value, *vend = v + index_it.value_len;
    if (sstable_handle_get(v, vend, &h) != vend) {
      rc = status_set(err, ST_CORRUPT, "%s: index entry %zu is not a block handle", what, block_no);
      goto fail;
    }
    if (h.offset < data_end) {
      rc = status_set(err, ST_CORRUPT, "%s: data block %zu (offset %llu) overlaps or precedes the block before it",
                      what, block_no, (unsigned long long)h.offset);
      goto fail;
    }
    if ((rc = index_walk_block(&w, buf, limit, h, block_no, index_it.key, index_it.key_len, err)) != ST_OK)
      goto fail;
    data_end = h.offset + h.size + SSTABLE_TRAILER_LEN;
    block_no++;
  }
  if (rc != ST_OK) goto fail;
  if (!w.seen_header) {
    rc = status_set(err, ST_CORRUPT, "%s: the table holds no entries, not even the bundle header", what);
    goto fail;
  }
  sstable_iter_free(&index_it);
  free(w.prev);
  *entries = w.entries;
  *n = w.n;
  *num_shards = w.num_shards;
  return ST_OK;

fail:
  sstable_iter_free(&index_it);
  free(w.prev);
  tfb_entries_free(w.entries, w.n);
  return rc;
}

/* ----------------------------------------------------------- files */

struct tfb_bundle {
  char *prefix;     /* "dir/bert_model.ckpt" */
  uint32_t num_shards;
  tfb_entry *entries;
  size_t n;
};

/* PREFIX.data-%05d-of-%05d, TensorFlow's DataFilename; malloc'd. */
static char *data_path(const tfb_bundle *b, uint32_t shard) {
  int len = snprintf(NULL, 0, "%s.data-%05u-of-%05u", b->prefix, shard, b->num_shards);
  char *path = len < 0 ? NULL : malloc((size_t)len + 1);
  if (path) snprintf(path, (size_t)len + 1, "%s.data-%05u-of-%05u", b->prefix, shard, b->num_shards);
  return path;
}

/* Each entry's bytes lie inside its shard's data file. */
static int data_bounds_check(const tfb_bundle *b, char **err) {
  uint64_t *sizes = malloc(b->num_shards * sizeof *sizes);
  if (!sizes) return status_set(err, ST_NOMEM, "%s: out of memory", b->prefix);
  memset(sizes, 0xff, b->num_shards * sizeof *sizes); /* UINT64_MAX: not looked at yet */
  int rc = ST_OK;
  char *path = NULL;
  for (size_t i = 0; i < b->n && rc == ST_OK; i++) {
    const tfb_entry *e = &b->entries[i];
    if (!(path = data_path(b, e->shard))) {
      rc = status_set(err, ST_NOMEM, "%s: out of memory", b->prefix);
      break;
    }
    struct stat st;
    if (sizes[e->shard] == UINT64_MAX) {
      if (stat(path, &st) != 0)
        rc = status_set(err, ST_IO, "%s: cannot open the data file of tensor %s: %s", path, e->name, strerror(errno));
      else sizes[e->shard] = (uint64_t)st.st_size;
    }
    if (rc == ST_OK && (e->offset > sizes[e->shard] || e->size > sizes[e->shard] - e->offset))
      rc = status_set(err, ST_CORRUPT,
                      "%s: tensor %s lies at bytes [%llu, %llu), past the file's end (%llu bytes): truncated, or "
                      "not the data of this index",
                      path, e->name, (unsigned long long)e->offset, (unsigned long long)(e->offset + e->size),
                      (unsigned long long)sizes[e->shard]);
    free(path);
    path = NULL;
  }
  free(sizes);
  return rc;
}

void tfb_close(tfb_bundle *b) {
  if (!b) return;
  tfb_entries_free(b->entries, b->n);
  free(b->prefix);
  free(b);
}

int tfb_open(const char *prefix, tfb_bundle **out, char **err) {
  char *buf = NULL;
  size_t len = 0, plen = strlen(prefix);
  char *index_path = NULL;
  int rc;
  *out = NULL;
  tfb_bundle *b = calloc(1, sizeof *b);
  if (plen >= 6 && strcmp(prefix + plen - 6, ".index") == 0) plen -= 6;
  if (b) b->prefix = strndup(prefix, plen);
  if (b && b->prefix) index_path = malloc(plen + 7);
  if (!index_path) {
    rc = status_set(err, ST_NOMEM, "%s: out of memory opening the bundle", prefix);
    goto fail;
  }
  snprintf(index_path, plen + 7, "%s.index", b->prefix);
  if ((rc = file_read_all(index_path, TFB_INDEX_MAX, &buf, &len, err)) != ST_OK ||
      (rc = tfb_index_parse((const uint8_t *)buf, len, index_path, &b->entries, &b->n, &b->num_shards, err)) != ST_OK ||
      (rc = data_bounds_check(b, err)) != ST_OK)
    goto fail;
  free(buf);
  free(index_path);
  *out = b;
  return ST_OK;

fail:
  free(buf);
  free(index_path);
  tfb_close(b);
  return rc;
}

size_t tfb_count(const tfb_bundle *b) { return b->n; }

const tfb_entry *tfb_entry_at(const tfb_bundle *b, size_t i) {
  assert(i < b->n);
  return &b->entries[i];
}

long tfb_find(const tfb_bundle *b, const char *name) {
  size_t lo = 0, hi = b->n;
  while (lo < hi) { /* entries are in key order, which is strcmp's for names without NUL */
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(b->entries[mid].name, name);
    if (c == 0) return (long)mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

static void widen_to_float(float *dst, const uint8_t *src, int dtype, size_t count) {
  for (size_t k = 0; k < count; k++) {
    if (dtype == TFB_DT_DOUBLE) {
      double d;
      memcpy(&d, src + 8 * k, sizeof d);
      dst[k] = (float)d;
    } else {
      uint16_t h = (uint16_t)(src[2 * k] | src[2 * k + 1] << 8);
      if (dtype == TFB_DT_HALF) {
        dst[k] = half_f16_to_f32(h);
      } else {
        dst[k] = half_bf16_to_f32(h);
      }
    }
  }
}

int tfb_read_f32(tfb_bundle *b, size_t i, float *dst, char **err) {
  assert(i < b->n);
  const tfb_entry *e = &b->entries[i];
  assert(dst || e->count == 0);
  if (!tfb_dtype_is_float(e->dtype))
    return status_set(err, ST_INVALID, "%s: tensor %s is %s, which is not readable as float32", b->prefix, e->name,
                      tfb_dtype_name(e->dtype));
  uint8_t *raw = NULL;
  int rc, fd = -1;
  char *path = data_path(b, e->shard);
  if (!path) return status_set(err, ST_NOMEM, "%s: out of memory", b->prefix);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
    rc = status_set(err, ST_IO, "%s: cannot open the data file of tensor %s: %s", path, e->name, strerror(errno));
    goto fail;
  }
  /* float32 lands in dst as it lies; the others go through raw. */
  raw = e->dtype == TFB_DT_FLOAT ? (uint8_t *)dst : malloc(e->size ? (size_t)e->size : 1);
  if (!raw) {
    rc = status_set(err, ST_NOMEM, "%s: out of memory reading tensor %s (%llu bytes)", path, e->name,
                    (unsigned long long)e->size);
    goto fail;
  }
  if ((rc = file_read_at(fd, raw, (size_t)e->size, e->offset, path, err)) != ST_OK) {
    status_wrap(err, rc, "tensor %s", e->name);
    goto fail;
  }
  uint32_t stored = crc32c_unmask(e->crc32c), actual = crc32c(raw, (size_t)e->size);
  if (stored != actual) {
    rc = status_set(err, ST_CORRUPT,
                    "%s: tensor %s fails its CRC32C over bytes [%llu, %llu) (stored %08x, computed %08x): the data "
                    "file is damaged",
                    path, e->name, (unsigned long long)e->offset, (unsigned long long)(e->offset + e->size), stored,
                    actual);
    goto fail;
  }
  if (e->dtype != TFB_DT_FLOAT) widen_to_float(dst, raw, e->dtype, e->count);
  rc = ST_OK;

fail:
  if (raw != (uint8_t *)dst) free(raw);
  if (fd >= 0) close(fd);
  free(path);
  return rc;
}
