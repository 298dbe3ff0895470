/* libFuzzer target for storage/tf_bundle's index reader. An even first
 * byte hands the rest to tfb_index_parse as a whole .index file (the table
 * framing, footer and block CRCs). An odd one reads the rest as key/value
 * records ([klen][vlen][key][value]...) that this harness frames as a sound
 * table, blocks and CRCs right, so that the fuzzer reaches the protobuf
 * values and the key checks behind the CRCs it cannot forge. Checks that a
 * refusal is one line naming the file, and that what is accepted holds what
 * tf_bundle.h promises (recomputed here, not trusted). */
#include <stdlib.h>
#include <string.h>

#include "storage/tf_bundle.h"
#include "util/crc32c.h"
#include "util/status.h"

#define FUZZ_WHAT "fuzz.index"

typedef struct buf {
  uint8_t p[1 << 16];
  size_t len;
} buf;

static void put(buf *b, const void *src, size_t n) {
  if (n > sizeof b->p - b->len) abort(); /* the input is capped below so that this cannot happen */
  memcpy(b->p + b->len, src, n);
  b->len += n;
}

static void put_varint(buf *b, uint64_t v) {
  do {
    uint8_t byte = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    put(b, &byte, 1);
    v >>= 7;
  } while (v);
}

static void put_fixed32(buf *b, uint32_t v) {
  uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put(b, le, 4);
}

typedef struct rec {
  const uint8_t *key, *value;
  size_t klen, vlen;
} rec;

static int rec_cmp(const void *a, const void *b) {
  const rec *x = a, *y = b;
  int c = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);
  return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

/* Appends a block of recs (each a restart every interval entries) and its
 * trailer to file; its handle to handles. */
static void emit_block(buf *file, buf *handles, const rec *r, size_t n, size_t interval) {
  static buf block;
  uint32_t restarts[256];
  size_t nr = 0;
  block.len = 0;
  for (size_t i = 0; i < n; i++) {
    size_t shared = 0;
    if (i % interval == 0) restarts[nr++] = (uint32_t)block.len;
    else
      while (shared < r[i].klen && shared < r[i - 1].klen && r[i].key[shared] == r[i - 1].key[shared]) shared++;
    put_varint(&block, shared);
    put_varint(&block, r[i].klen - shared);
    put_varint(&block, r[i].vlen);
    put(&block, r[i].key + shared, r[i].klen - shared);
    put(&block, r[i].value, r[i].vlen);
  }
  if (nr == 0) restarts[nr++] = 0;
  for (size_t i = 0; i < nr; i++) put_fixed32(&block, restarts[i]);
  put_fixed32(&block, (uint32_t)nr);
  put_varint(handles, file->len);
  put_varint(handles, block.len);
  put(file, block.p, block.len);
  uint8_t type = 0;
  put(file, &type, 1);
  put_fixed32(file, crc32c_mask(crc32c_extend(crc32c(block.p, block.len), &type, 1)));
}

/* The records of data, sorted and without repeats, framed as a table. */
static void frame_table(buf *file, const uint8_t *data, size_t size) {
  static rec recs[256], index[256];
  static buf handles;
  size_t n = 0, per_block = size > 0 ? 1 + data[0] % 8 : 1, interval = size > 1 ? 1 + data[1] % 8 : 1;
  size_t pos = size > 2 ? 2 : size;
  while (n < 256 && pos + 2 <= size) {
    size_t klen = data[pos], vlen = data[pos + 1];
    pos += 2;
    if (klen + vlen > size - pos) break;
    recs[n++] = (rec){data + pos, data + pos + klen, klen, vlen};
    pos += klen + vlen;
  }
  qsort(recs, n, sizeof *recs, rec_cmp);
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    if (kept == 0 || rec_cmp(&recs[kept - 1], &recs[i]) != 0) recs[kept++] = recs[i];
  handles.len = 0;
  size_t n_index = 0;
  for (size_t first = 0; first < kept; first += per_block) {
    size_t count = kept - first < per_block ? kept - first : per_block;
    size_t at = handles.len;
    emit_block(file, &handles, recs + first, count, interval);
    /* The block's last key is a valid index key; the handle is the value. */
    index[n_index++] = (rec){recs[first + count - 1].key, handles.p + at, recs[first + count - 1].klen,
                             handles.len - at};
  }
  static buf footer;
  footer.len = 0;
  emit_block(file, &footer, NULL, 0, 1);           /* the metaindex */
  emit_block(file, &footer, index, n_index, 1);    /* the index */
  uint8_t zeros[40] = {0};
  put(&footer, zeros, 40 - footer.len);
  put_fixed32(&footer, 0x8b80fb57u);
  put_fixed32(&footer, 0xdb477524u);
  put(file, footer.p, footer.len);
}

static int is_float_dtype(int dt) {
  return dt == TFB_DT_FLOAT || dt == TFB_DT_DOUBLE || dt == TFB_DT_HALF || dt == TFB_DT_BFLOAT16;
}

static size_t float_dtype_size(int dt) { return dt == TFB_DT_FLOAT ? 4 : dt == TFB_DT_DOUBLE ? 8 : 2; }

static void check(const uint8_t *index, size_t len) {
  tfb_entry *e = NULL;
  size_t n = 0;
  uint32_t shards = 0;
  char *err = NULL;
  int rc = tfb_index_parse(index, len, FUZZ_WHAT, &e, &n, &shards, &err);
  if (rc != ST_OK) {
    if (!err || strchr(err, '\n') || strncmp(err, FUZZ_WHAT ": ", strlen(FUZZ_WHAT) + 2) != 0) abort();
    free(err);
    return;
  }
  if (err || shards < 1 || shards > TFB_SHARDS_MAX) abort();
  for (size_t i = 0; i < n; i++) {
    const tfb_entry *t = &e[i];
    if (!t->name || t->name[0] == '\0' || (i > 0 && strcmp(e[i - 1].name, t->name) >= 0)) abort();
    for (const char *c = t->name; *c; c++)
      if ((unsigned char)*c < 0x20 || *c == 0x7f) abort();
    if (t->ndim < 0 || t->ndim > CKPT_NDIM_MAX || t->shard >= shards || t->dtype == 0) abort();
    size_t count = 1;
    for (int d = 0; d < t->ndim; d++) count *= t->shape[d];
    if (count != t->count) abort();
    if (is_float_dtype(t->dtype) && (uint64_t)count * float_dtype_size(t->dtype) != t->size) abort();
    if (t->offset > INT64_MAX || t->size > INT64_MAX) abort();
  }
  tfb_entries_free(e, n);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static buf file;
  if (size == 0 || size > 4096) return 0;
  if (data[0] % 2 == 0) {
    check(data + 1, size - 1);
  } else {
    file.len = 0;
    frame_table(&file, data + 1, size - 1);
    check(file.p, file.len);
  }
  return 0;
}
