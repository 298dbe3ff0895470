/* storage/tf_bundle: TensorFlow tensor bundles written here from the format
 * (LevelDB's table_format.md, TensorFlow's tensor_bundle.proto and
 * table_builder.cc), not by the code under test: data blocks with
 * prefix-compressed keys and restart points, index separators shortened as
 * TableBuilder shortens them, the footer, protobuf entries, two data shards.
 * Then read back value for value, and damaged every way the reader promises
 * to catch, each failure a status and a message naming the file and tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"
#include "harness.h"
#include "storage/tf_bundle.h"
#include "util/crc32c.h"
#include "util/file.h"
#include "util/status.h"

/* ---------------------------------------------------------------- bytes */

typedef struct bytes {
  uint8_t *p;
  size_t len, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
  }
  if (n) memcpy(b->p + b->len, src, n);
  b->len += n;
}

static void put_varint(bytes *b, uint64_t v) {
  do {
    uint8_t byte = (uint8_t)(v & 0x7f) | (v > 0x7f ? 0x80 : 0);
    put(b, &byte, 1);
    v >>= 7;
  } while (v);
}

static void put_fixed32(bytes *b, uint32_t v) {
  uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put(b, le, 4);
}

/* Protobuf fields: tag (number << 3 | wire type), then the payload. */
static void pb_varint(bytes *b, unsigned field, uint64_t v) {
  put_varint(b, (uint64_t)field << 3 | 0);
  put_varint(b, v);
}

static void pb_fixed32(bytes *b, unsigned field, uint32_t v) {
  put_varint(b, (uint64_t)field << 3 | 5);
  put_fixed32(b, v);
}

static void pb_message(bytes *b, unsigned field, const bytes *m) {
  put_varint(b, (uint64_t)field << 3 | 2);
  put_varint(b, m->len);
  put(b, m->p, m->len);
}

/* ---------------------------------------------------------------- tensors */

typedef struct fx_tensor {
  const char *name;
  int dtype;
  int ndim;
  size_t shape[3];
  uint32_t shard;
  const void *data;
  size_t nbytes;
  float want[16]; /* what tfb_read_f32 must give (for float-readable dtypes) */
} fx_tensor;

static const float ln_beta[4] = {0.5f, -1.25f, 3.0f, 0.0f};
static const float ln_gamma[4] = {1.0f, 2.0f, 0.75f, -4.0f};
static const float word_emb[15] = {-1, -0.75f, -0.5f, -0.25f, 0, 0.25f, 0.5f, 0.75f, 1, 1.25f, 1.5f, 1.75f, 2, 2.25f,
                                   2.5f};
static const float q_bias[2] = {0.125f, -0.125f};
/* 1, -2.5, 65504 (largest half), 2^-24 (smallest subnormal), +inf, 0.5,
 * -0, a NaN with payload bits */
static const uint16_t q_kernel_f16[8] = {0x3c00, 0xc100, 0x7bff, 0x0001, 0x7c00, 0x3800, 0x8000, 0x7e01};
/* 1, -3, and the float whose bits are 0x00010000 (a subnormal) */
static const uint16_t pool_bias_bf16[3] = {0x3f80, 0xc040, 0x0001};
static const double out_bias_f64[2] = {0.1, -2.0};
static const int64_t global_step[1] = {12345};
static const float loss_scale[1] = {7.5f};
/* DT_STRING's encoding (varint lengths, a masked CRC, the bytes): only its
 * size is not checked against the shape. */
static const char strings[] = "\x01\x02\0\0\0\0abc";

enum { FX_NT = 10, FX_SHARDS = 2 };

static float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* In key order. */
static void fx_tensors(fx_tensor t[FX_NT]) {
  fx_tensor all[FX_NT] = {
      {"bert/embeddings/LayerNorm/beta", TFB_DT_FLOAT, 1, {4}, 0, ln_beta, sizeof ln_beta, {0}},
      {"bert/embeddings/LayerNorm/gamma", TFB_DT_FLOAT, 1, {4}, 0, ln_gamma, sizeof ln_gamma, {0}},
      {"bert/embeddings/word_embeddings", TFB_DT_FLOAT, 2, {5, 3}, 1, word_emb, sizeof word_emb, {0}},
      {"bert/encoder/layer_0/attention/self/query/bias", TFB_DT_FLOAT, 1, {2}, 1, q_bias, sizeof q_bias, {0}},
      {"bert/encoder/layer_0/attention/self/query/kernel", TFB_DT_HALF, 2, {4, 2}, 0, q_kernel_f16,
       sizeof q_kernel_f16, {1.0f, -2.5f, 65504.0f, 0x1p-24f, INFINITY, 0.5f, -0.0f, 0}},
      {"bert/pooler/dense/bias", TFB_DT_BFLOAT16, 1, {3}, 1, pool_bias_bf16, sizeof pool_bias_bf16,
       {1.0f, -3.0f, 0}},
      {"cls/predictions/output_bias", TFB_DT_DOUBLE, 1, {2}, 1, out_bias_f64, sizeof out_bias_f64,
       {(float)0.1, -2.0f}},
      {"global_step", TFB_DT_INT64, 0, {0}, 0, global_step, sizeof global_step, {0}},
      {"loss_scale", TFB_DT_FLOAT, 0, {0}, 1, loss_scale, sizeof loss_scale, {7.5f}},
      {"string_table", 7 /* DT_STRING */, 1, {2}, 0, strings, sizeof strings - 1, {0}},
  };
  all[4].want[7] = bits_float(0x7fc02000u); /* the payload moves up with the mantissa */
  all[5].want[2] = bits_float(0x00010000u);
  for (int k = 0; k < FX_NT; k++) {
    if (all[k].dtype == TFB_DT_FLOAT) memcpy(all[k].want, all[k].data, all[k].nbytes);
    t[k] = all[k];
  }
}

/* ---------------------------------------------------------------- the writer */

typedef struct fx_opts {
  size_t per_block;        /* table entries per data block (the header counts) */
  size_t restart_interval; /* entries between restart points */
  int endianness;          /* the header's: 0 little, 1 big */
  int no_header;           /* leave out the key "" */
  int swap_keys;           /* write table entries 2 and 3 (after the header) swapped */
  int compress_block;      /* mark data block compress_block - 1 snappy (0: none) */
  const char *sliced;      /* this tensor's entry carries a slices field */
  const char *bad_offset;  /* this tensor's entry points past its data file */
  const char *bad_size;    /* this tensor's entry says 4 bytes more than its shape needs */
  int odd_restart;         /* each data block records a restart inside its last entry */
  int restart_shares;      /* entries at restart points still share a prefix */
  int short_separator;     /* data block 0's index key drops its last key's final byte */
  int reverse_blocks;      /* data blocks lie in the file in reverse key order */
} fx_opts;

typedef struct kv {
  const char *key;
  size_t klen;
  bytes value;
} kv;

static size_t common_prefix(const char *a, size_t alen, const char *b, size_t blen) {
  size_t n = 0;
  while (n < alen && n < blen && a[n] == b[n]) n++;
  return n;
}

/* A block: entries prefix-compressed against the one before, a restart
 * (whole key) every interval entries, then the restart offsets and count.
 * o (NULL for the index and metaindex) may damage the restarts. */
static void block_build(bytes *out, const kv *kvs, size_t n, size_t interval, const fx_opts *o) {
  uint32_t restarts[256];
  size_t nr = 0;
  for (size_t i = 0; i < n; i++) {
    size_t shared = i ? common_prefix(kvs[i - 1].key, kvs[i - 1].klen, kvs[i].key, kvs[i].klen) : 0;
    if (i % interval == 0) {
      restarts[nr++] = (uint32_t)out->len;
      if (!(o && o->restart_shares)) shared = 0;
    }
    if (o && o->odd_restart && n >= 2 && i == n - 1) restarts[nr++] = (uint32_t)out->len + 1;
    put_varint(out, shared);
    put_varint(out, kvs[i].klen - shared);
    put_varint(out, kvs[i].value.len);
    put(out, kvs[i].key + shared, kvs[i].klen - shared);
    put(out, kvs[i].value.p, kvs[i].value.len);
  }
  if (nr == 0) restarts[nr++] = 0;
  for (size_t r = 0; r < nr; r++) put_fixed32(out, restarts[r]);
  put_fixed32(out, (uint32_t)nr);
}

/* Appends block and its trailer (type, masked CRC32C of block + type) to
 * file; *handle gets the BlockHandle encoding. */
static void block_emit(bytes *file, const bytes *block, uint8_t type, bytes *handle) {
  put_varint(handle, file->len);
  put_varint(handle, block->len);
  put(file, block->p, block->len);
  put(file, &type, 1);
  put_fixed32(file, crc32c_mask(crc32c_extend(crc32c(block->p, block->len), &type, 1)));
}

/* TableBuilder's index keys: the shortest key >= the block's last and <
 * the next block's first; after the last block, a short successor. */
static char *separator(const kv *last, const kv *next, size_t *len) {
  char *s = malloc(last->klen + 1);
  memcpy(s, last->key, last->klen);
  *len = last->klen;
  if (next) {
    size_t d = common_prefix(last->key, last->klen, next->key, next->klen);
    if (d < last->klen && d < next->klen && (uint8_t)s[d] < 0xff && (uint8_t)s[d] + 1 < (uint8_t)next->key[d]) {
      s[d]++;
      *len = d + 1;
    }
  } else {
    for (size_t i = 0; i < last->klen; i++)
      if ((uint8_t)s[i] != 0xff) {
        s[i]++;
        *len = i + 1;
        break;
      }
  }
  return s;
}

static void table_build(bytes *file, const kv *kvs, size_t n, const fx_opts *o) {
  bytes index = {0}, meta = {0}, *blocks = calloc(n, sizeof *blocks);
  kv *index_kvs = calloc(n + 1, sizeof *index_kvs);
  size_t n_index = 0;
  for (size_t first = 0; first < n; first += o->per_block) {
    size_t count = n - first < o->per_block ? n - first : o->per_block;
    block_build(&blocks[n_index], kvs + first, count, o->restart_interval, o);
    kv *ix = &index_kvs[n_index++];
    ix->key = separator(&kvs[first + count - 1], first + count < n ? &kvs[first + count] : NULL, &ix->klen);
    if (o->short_separator && n_index == 1) { /* a proper prefix of the last key: below it */
      ix->klen = kvs[first + count - 1].klen - 1;
      memcpy((char *)ix->key, kvs[first + count - 1].key, ix->klen);
    }
  }
  for (size_t j = 0; j < n_index; j++) {
    size_t i = o->reverse_blocks ? n_index - 1 - j : j;
    block_emit(file, &blocks[i], (size_t)o->compress_block == i + 1 ? 1 : 0, &index_kvs[i].value);
    free(blocks[i].p);
  }
  free(blocks);
  block_build(&meta, NULL, 0, 1, NULL);
  bytes footer = {0};
  block_emit(file, &meta, 0, &footer);
  block_build(&index, index_kvs, n_index, 1, NULL);
  block_emit(file, &index, 0, &footer);
  uint8_t zeros[40] = {0};
  put(&footer, zeros, 40 - footer.len);
  put_fixed32(&footer, 0x8b80fb57u);
  put_fixed32(&footer, 0xdb477524u);
  put(file, footer.p, footer.len);
  for (size_t i = 0; i < n_index; i++) {
    free((char *)index_kvs[i].key);
    free(index_kvs[i].value.p);
  }
  free(index_kvs);
  free(index.p);
  free(meta.p);
  free(footer.p);
}

static int write_bytes(const char *path, const bytes *b) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(b->p, 1, b->len, f);
  return fclose(f) != 0 || w != b->len ? -1 : 0;
}

static char *data_file(const char *prefix, int shard) {
  char *path = malloc(strlen(prefix) + 32);
  sprintf(path, "%s.data-%05d-of-%05d", prefix, shard, FX_SHARDS);
  return path;
}

static char *index_file(const char *prefix) {
  char *path = malloc(strlen(prefix) + 8);
  sprintf(path, "%s.index", prefix);
  return path;
}

/* Writes PREFIX.index and both data shards under dir; returns PREFIX. */
static char *fx_write(const char *dir, const fx_opts *o) {
  fx_tensor t[FX_NT];
  fx_tensors(t);
  bytes data[FX_SHARDS] = {{0}};
  kv kvs[FX_NT + 1];
  size_t n = 0;
  if (!o->no_header) {
    bytes version = {0};
    pb_varint(&version, 1, 1); /* producer */
    kvs[n] = (kv){"", 0, {0}};
    pb_varint(&kvs[n].value, 1, FX_SHARDS);
    if (o->endianness) pb_varint(&kvs[n].value, 2, (uint64_t)o->endianness);
    pb_message(&kvs[n].value, 3, &version);
    free(version.p);
    n++;
  }
  for (int k = 0; k < FX_NT; k++) {
    bytes *d = &data[t[k].shard];
    bytes shape = {0}, *e = &kvs[n].value;
    kvs[n].key = t[k].name;
    kvs[n].klen = strlen(t[k].name);
    *e = (bytes){0};
    for (int i = 0; i < t[k].ndim; i++) {
      bytes dim = {0};
      pb_varint(&dim, 1, t[k].shape[i]);
      pb_message(&shape, 2, &dim);
      free(dim.p);
    }
    uint64_t offset = d->len, size = t[k].nbytes;
    if (o->bad_offset && strcmp(o->bad_offset, t[k].name) == 0) offset += 1000;
    if (o->bad_size && strcmp(o->bad_size, t[k].name) == 0) size += 4;
    pb_varint(e, 1, (uint64_t)t[k].dtype);
    pb_message(e, 2, &shape);
    if (t[k].shard) pb_varint(e, 3, t[k].shard); /* proto3 leaves zeros out */
    if (offset) pb_varint(e, 4, offset);
    pb_varint(e, 5, size);
    pb_fixed32(e, 6, crc32c_mask(crc32c(t[k].data, t[k].nbytes)));
    if (o->sliced && strcmp(o->sliced, t[k].name) == 0) {
      bytes slice = {0}, extent = {0};
      pb_varint(&extent, 1, 0); /* start */
      pb_varint(&extent, 2, 1); /* length */
      pb_message(&slice, 1, &extent);
      pb_message(e, 7, &slice);
      free(slice.p);
      free(extent.p);
    }
    put(d, t[k].data, t[k].nbytes);
    free(shape.p);
    n++;
  }
  if (o->swap_keys) {
    kv tmp = kvs[2];
    kvs[2] = kvs[3], kvs[3] = tmp;
  }
  bytes table = {0};
  table_build(&table, kvs, n, o);
  char *prefix = file_path_join(dir, "model.ckpt"), *ipath = index_file(prefix);
  int rc = write_bytes(ipath, &table);
  for (int s = 0; s < FX_SHARDS; s++) {
    char *dpath = data_file(prefix, s);
    rc |= write_bytes(dpath, &data[s]);
    free(dpath);
    free(data[s].p);
  }
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  for (size_t i = 0; i < n; i++) free(kvs[i].value.p);
  free(table.p);
  free(ipath);
  return prefix;
}

static const fx_opts fx_default = {.per_block = 3, .restart_interval = 2};

/* ---------------------------------------------------------------- helpers */

static char *dir;

static char *fresh(const fx_opts *o) {
  dir = harness_tmpdir("tf-bundle");
  return fx_write(dir, o);
}

static void cleanup(char *prefix) {
  free(prefix);
  harness_rmtree(dir);
  free(dir);
  dir = NULL;
}

static int slurp(const char *path, bytes *b) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  uint8_t chunk[4096];
  size_t r;
  while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) put(b, chunk, r);
  fclose(f);
  return 0;
}

static void xor_byte(const char *path, long offset, uint8_t mask) {
  bytes b = {0};
  CU_ASSERT_EQUAL_FATAL(slurp(path, &b), 0);
  size_t at = offset < 0 ? b.len - (size_t)(-offset) : (size_t)offset;
  b.p[at] ^= mask;
  CU_ASSERT_EQUAL_FATAL(write_bytes(path, &b), 0);
  free(b.p);
}

/* Opens prefix expecting failure with code; the message must hold each of
 * the NULL-terminated needles. */
static void expect_open_fails(const char *prefix, int code, const char *const *needles) {
  tfb_bundle *b = NULL;
  char *err = NULL;
  int rc = tfb_open(prefix, &b, &err);
  CU_ASSERT_EQUAL(rc, code);
  CU_ASSERT_PTR_NULL(b);
  CU_ASSERT_PTR_NOT_NULL(err);
  CU_ASSERT(err == NULL || strchr(err, '\n') == NULL);
  for (const char *const *n = needles; *n; n++)
    if (!fixture_contains(err, *n)) {
      fprintf(stderr, "\n  message \"%s\" lacks \"%s\"\n", err ? err : "(null)", *n);
      CU_FAIL("message lacks a needle");
    }
  free(err);
  tfb_close(b);
}

/* ---------------------------------------------------------------- tests */

/* One block per entry up to all in one block, restarts every entry up to
 * one per block: each layout reads back the same entries and values. */
static void test_tf_bundle_reads_every_entry_and_value_in_any_block_layout(void) {
  const size_t layouts[][2] = {{3, 2}, {1, 1}, {100, 16}, {4, 3}, {2, 5}};
  for (size_t l = 0; l < sizeof layouts / sizeof *layouts; l++) {
    fx_opts o = {.per_block = layouts[l][0], .restart_interval = layouts[l][1]};
    char *prefix = fresh(&o);
    tfb_bundle *b = NULL;
    char *err = NULL;
    int rc = tfb_open(prefix, &b, &err);
    if (rc) fprintf(stderr, "\n  layout %zu: %s\n", l, err);
    CU_ASSERT_EQUAL_FATAL(rc, ST_OK);
    fx_tensor t[FX_NT];
    fx_tensors(t);
    CU_ASSERT_EQUAL(tfb_count(b), FX_NT);
    for (size_t k = 0; k < FX_NT && k < tfb_count(b); k++) {
      const tfb_entry *e = tfb_entry_at(b, k);
      CU_ASSERT_STRING_EQUAL(e->name, t[k].name);
      CU_ASSERT_EQUAL(tfb_find(b, t[k].name), (long)k);
      CU_ASSERT_EQUAL(e->dtype, t[k].dtype);
      CU_ASSERT_EQUAL(e->ndim, t[k].ndim);
      size_t count = 1;
      for (int d = 0; d < t[k].ndim; d++) {
        CU_ASSERT_EQUAL(e->shape[d], t[k].shape[d]);
        count *= t[k].shape[d];
      }
      CU_ASSERT_EQUAL(e->count, count);
      CU_ASSERT_EQUAL(e->shard, t[k].shard);
      CU_ASSERT_EQUAL(e->size, t[k].nbytes);
      float got[16];
      memset(got, 0xa5, sizeof got);
      rc = tfb_read_f32(b, k, got, &err);
      if (t[k].dtype == TFB_DT_INT64 || t[k].dtype == 7) {
        CU_ASSERT_EQUAL(rc, ST_INVALID);
        CU_ASSERT(fixture_contains(err, t[k].name) && fixture_contains(err, tfb_dtype_name(t[k].dtype)));
        free(err);
        err = NULL;
        continue;
      }
      CU_ASSERT_EQUAL_FATAL(rc, ST_OK);
      CU_ASSERT_EQUAL(memcmp(got, t[k].want, count * sizeof(float)), 0); /* bit for bit */
    }
    CU_ASSERT_EQUAL(tfb_find(b, "bert"), -1);
    CU_ASSERT_EQUAL(tfb_find(b, ""), -1);
    CU_ASSERT_EQUAL(tfb_find(b, "zzz"), -1);
    CU_ASSERT_STRING_EQUAL(tfb_dtype_name(TFB_DT_BFLOAT16), "DT_BFLOAT16");
    tfb_close(b);
    cleanup(prefix);
  }
}

static void test_tf_bundle_opens_by_index_path_and_parses_index_bytes(void) {
  char *prefix = fresh(&fx_default), *ipath = index_file(prefix);
  tfb_bundle *b = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(tfb_open(ipath, &b, &err), ST_OK);
  CU_ASSERT_EQUAL(tfb_count(b), FX_NT);
  tfb_close(b);
  bytes idx = {0};
  CU_ASSERT_EQUAL_FATAL(slurp(ipath, &idx), 0);
  tfb_entry *e = NULL;
  size_t n = 0;
  uint32_t shards = 0;
  CU_ASSERT_EQUAL(tfb_index_parse(idx.p, idx.len, "x.index", &e, &n, &shards, &err), ST_OK);
  CU_ASSERT_EQUAL(n, FX_NT);
  CU_ASSERT_EQUAL(shards, FX_SHARDS);
  tfb_entries_free(e, n);
  tfb_entries_free(NULL, 0);
  tfb_close(NULL);
  free(idx.p);
  free(ipath);
  cleanup(prefix);
}

static void test_tf_bundle_refuses_bad_magic(void) {
  char *prefix = fresh(&fx_default), *ipath = index_file(prefix);
  xor_byte(ipath, -1, 0x01);
  expect_open_fails(prefix, ST_CORRUPT, (const char *[]){"model.ckpt.index", "magic", NULL});
  free(ipath);
  cleanup(prefix);
}

static void test_tf_bundle_refuses_data_block_with_bad_crc(void) {
  char *prefix = fresh(&fx_default), *ipath = index_file(prefix);
  xor_byte(ipath, 40, 0x10); /* inside the first data block */
  expect_open_fails(prefix, ST_CORRUPT, (const char *[]){"model.ckpt.index", "data block", "CRC32C", NULL});
  free(ipath);
  cleanup(prefix);
}

static void test_tf_bundle_refuses_snappy_compressed_block(void) {
  fx_opts o = fx_default;
  o.compress_block = 2;
  char *prefix = fresh(&o);
  expect_open_fails(prefix, ST_INVALID,
                    (const char *[]){"model.ckpt.index", "snappy-compressed blocks are not supported", NULL});
  cleanup(prefix);
}

static void test_tf_bundle_refuses_keys_out_of_order(void) {
  fx_opts o = fx_default;
  o.swap_keys = 1;
  char *prefix = fresh(&o);
  expect_open_fails(prefix, ST_CORRUPT,
                    (const char *[]){"model.ckpt.index", "out of order", "bert/embeddings/LayerNorm/gamma",
                                     "bert/embeddings/word_embeddings", NULL});
  cleanup(prefix);
}

static void test_tf_bundle_refuses_restart_point_inside_an_entry(void) {
  fx_opts o = fx_default;
  o.odd_restart = 1;
  char *prefix = fresh(&o);
  expect_open_fails(prefix, ST_CORRUPT, (const char *[]){"model.ckpt.index", "data block", "restart", NULL});
  cleanup(prefix);
}

static void test_tf_bundle_refuses_restart_entry_that_shares_a_prefix(void) {
  fx_opts o = fx_default;
  o.restart_shares = 1;
  char *prefix = fresh(&o);
  expect_open_fails(prefix, ST_CORRUPT, (const char *[]){"model.ckpt.index", "restart point", NULL});
  cleanup(prefix);
}

static void test_tf_bundle_refuses_key_beyond_its_index_key(void) {
  fx_opts o = fx_default;
  o.short_separator = 1;
  char *prefix = fresh(&o);
  expect_open_fails(prefix, ST_CORRUPT,
                    (const char *[]){"model.ckpt.index", "bert/embeddings/LayerNorm/gamma", "index key", NULL});
  cleanup(prefix);
}

/* Keys in order, blocks sound, but not in file order: the reader's promise
 * to read each byte once rests on this check. */
static void test_tf_bundle_refuses_data_blocks_out_of_file_order(void) {
  fx_opts o = fx_default;
  o.reverse_blocks = 1;
  char *prefix = fresh(&o);
  expect_open_fails(prefix, ST_CORRUPT, (const char *[]){"model.ckpt.index", "precedes", NULL});
  cleanup(prefix);
}

static void test_tf_bundle_refuses_index_without_header(void) {
  fx_opts o = fx_default;
  o.no_header = 1;
  char *prefix = fresh(&o);
  expect_open_fails(prefix, ST_CORRUPT,
                    (const char *[]){"model.ckpt.index", "bert/embeddings/LayerNorm/beta", "not the bundle header",
                                     NULL});
  cleanup(prefix);
}

static void test_tf_bundle_refuses_partitioned_variable(void) {
  fx_opts o = fx_default;
  o.sliced = "bert/pooler/dense/bias";
  char *prefix = fresh(&o);
  expect_open_fails(prefix, ST_INVALID,
                    (const char *[]){"model.ckpt.index", "bert/pooler/dense/bias", "partitioned", NULL});
  cleanup(prefix);
}

static void test_tf_bundle_refuses_big_endian_bundle(void) {
  fx_opts o = fx_default;
  o.endianness = 1;
  char *prefix = fresh(&o);
  expect_open_fails(prefix, ST_INVALID, (const char *[]){"model.ckpt.index", "big-endian", NULL});
  cleanup(prefix);
}

static void test_tf_bundle_refuses_size_that_disagrees_with_shape(void) {
  fx_opts o = fx_default;
  o.bad_size = "bert/embeddings/word_embeddings";
  char *prefix = fresh(&o);
  expect_open_fails(prefix, ST_CORRUPT,
                    (const char *[]){"model.ckpt.index", "bert/embeddings/word_embeddings", "[5, 3]", NULL});
  cleanup(prefix);
}

static void test_tf_bundle_refuses_offset_past_data_file(void) {
  fx_opts o = fx_default;
  o.bad_offset = "loss_scale";
  char *prefix = fresh(&o);
  expect_open_fails(prefix, ST_CORRUPT, (const char *[]){"model.ckpt.data-00001-of-00002", "loss_scale", NULL});
  cleanup(prefix);
}

static void test_tf_bundle_refuses_truncated_data_file(void) {
  char *prefix = fresh(&fx_default), *dpath = data_file(prefix, 1);
  CU_ASSERT_EQUAL_FATAL(truncate(dpath, 50), 0); /* word_embeddings (60 bytes) first in shard 1 */
  expect_open_fails(prefix, ST_CORRUPT,
                    (const char *[]){"model.ckpt.data-00001-of-00002", "bert/embeddings/word_embeddings", NULL});
  free(dpath);
  cleanup(prefix);
}

static void test_tf_bundle_refuses_missing_data_file(void) {
  char *prefix = fresh(&fx_default), *dpath = data_file(prefix, 0);
  CU_ASSERT_EQUAL_FATAL(unlink(dpath), 0);
  expect_open_fails(prefix, ST_IO, (const char *[]){"model.ckpt.data-00000-of-00002", NULL});
  expect_open_fails("/nonexistent/model.ckpt", ST_IO, (const char *[]){"/nonexistent/model.ckpt.index", NULL});
  free(dpath);
  cleanup(prefix);
}

/* The index is sound, so open succeeds; only the damaged tensor fails, at
 * its read, by its CRC32C. */
static void test_tf_bundle_read_refuses_tensor_whose_bytes_fail_crc(void) {
  char *prefix = fresh(&fx_default), *dpath = data_file(prefix, 0);
  const char *name = "bert/encoder/layer_0/attention/self/query/kernel";
  tfb_bundle *b = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(tfb_open(prefix, &b, &err), ST_OK);
  long k = tfb_find(b, name);
  CU_ASSERT_FATAL(k >= 0);
  xor_byte(dpath, (long)tfb_entry_at(b, (size_t)k)->offset + 3, 0x04);
  float got[16];
  CU_ASSERT_EQUAL(tfb_read_f32(b, (size_t)k, got, &err), ST_CORRUPT);
  CU_ASSERT(fixture_contains(err, name) && fixture_contains(err, "model.ckpt.data-00000-of-00002") &&
            fixture_contains(err, "CRC32C"));
  free(err);
  err = NULL;
  CU_ASSERT_EQUAL(tfb_read_f32(b, (size_t)tfb_find(b, "bert/embeddings/LayerNorm/beta"), got, &err), ST_OK);
  CU_ASSERT_EQUAL(got[1], -1.25f);
  tfb_close(b);
  free(dpath);
  cleanup(prefix);
}

/* Every prefix of a good index, and the index with any single bit flipped:
 * a status and a one-line message naming the file, never a crash. Flips in
 * the footer's padding change nothing the reader uses, so those may pass. */
static void test_tf_bundle_index_parse_survives_every_truncation_and_bit_flip(void) {
  char *prefix = fresh(&fx_default), *ipath = index_file(prefix);
  bytes idx = {0};
  CU_ASSERT_EQUAL_FATAL(slurp(ipath, &idx), 0);
  size_t failed_cut = 0, bad_message = 0, passed_flip = 0;
  for (size_t len = 0; len < idx.len; len++) {
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, idx.p, len);
    tfb_entry *e = NULL;
    size_t n = 0;
    uint32_t shards = 0;
    char *err = NULL;
    if (tfb_index_parse(copy, len, "x.index", &e, &n, &shards, &err) != ST_OK) failed_cut++;
    if (!err || strncmp(err, "x.index: ", 9) != 0 || strchr(err, '\n')) bad_message++;
    free(err);
    free(copy);
  }
  for (size_t at = 0; at < idx.len; at++)
    for (int bit = 0; bit < 8; bit++) {
      idx.p[at] ^= (uint8_t)(1u << bit);
      tfb_entry *e = NULL;
      size_t n = 0;
      uint32_t shards = 0;
      char *err = NULL;
      int rc = tfb_index_parse(idx.p, idx.len, "x.index", &e, &n, &shards, &err);
      if (rc == ST_OK) {
        passed_flip++;
        CU_ASSERT(at >= idx.len - 48 && at < idx.len - 8);
        tfb_entries_free(e, n);
      } else if (!err || strncmp(err, "x.index: ", 9) != 0 || strchr(err, '\n')) {
        bad_message++;
      }
      free(err);
      idx.p[at] ^= (uint8_t)(1u << bit);
    }
  CU_ASSERT_EQUAL(failed_cut, idx.len);
  CU_ASSERT_EQUAL(bad_message, 0);
  CU_ASSERT(passed_flip > 0); /* the padding exists and is ignored, as TensorFlow ignores it */
  free(idx.p);
  free(ipath);
  cleanup(prefix);
}

static const harness_test tests[] = {
    {"tf_bundle_reads_every_entry_and_value_in_any_block_layout",
     test_tf_bundle_reads_every_entry_and_value_in_any_block_layout},
    {"tf_bundle_opens_by_index_path_and_parses_index_bytes", test_tf_bundle_opens_by_index_path_and_parses_index_bytes},
    {"tf_bundle_refuses_bad_magic", test_tf_bundle_refuses_bad_magic},
    {"tf_bundle_refuses_data_block_with_bad_crc", test_tf_bundle_refuses_data_block_with_bad_crc},
    {"tf_bundle_refuses_snappy_compressed_block", test_tf_bundle_refuses_snappy_compressed_block},
    {"tf_bundle_refuses_keys_out_of_order", test_tf_bundle_refuses_keys_out_of_order},
    {"tf_bundle_refuses_restart_point_inside_an_entry", test_tf_bundle_refuses_restart_point_inside_an_entry},
    {"tf_bundle_refuses_restart_entry_that_shares_a_prefix", test_tf_bundle_refuses_restart_entry_that_shares_a_prefix},
    {"tf_bundle_refuses_key_beyond_its_index_key", test_tf_bundle_refuses_key_beyond_its_index_key},
    {"tf_bundle_refuses_data_blocks_out_of_file_order", test_tf_bundle_refuses_data_blocks_out_of_file_order},
    {"tf_bundle_refuses_index_without_header", test_tf_bundle_refuses_index_without_header},
    {"tf_bundle_refuses_partitioned_variable", test_tf_bundle_refuses_partitioned_variable},
    {"tf_bundle_refuses_big_endian_bundle", test_tf_bundle_refuses_big_endian_bundle},
    {"tf_bundle_refuses_size_that_disagrees_with_shape", test_tf_bundle_refuses_size_that_disagrees_with_shape},
    {"tf_bundle_refuses_offset_past_data_file", test_tf_bundle_refuses_offset_past_data_file},
    {"tf_bundle_refuses_truncated_data_file", test_tf_bundle_refuses_truncated_data_file},
    {"tf_bundle_refuses_missing_data_file", test_tf_bundle_refuses_missing_data_file},
    {"tf_bundle_read_refuses_tensor_whose_bytes_fail_crc", test_tf_bundle_read_refuses_tensor_whose_bytes_fail_crc},
    {"tf_bundle_index_parse_survives_every_truncation_and_bit_flip",
     test_tf_bundle_index_parse_survives_every_truncation_and_bit_flip},
    {NULL, NULL}};

const harness_suite storage_tf_bundle_suite = {"storage_tf_bundle", tests};
