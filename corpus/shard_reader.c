/* Reading a finished shard's LevelDB tables directly (util/sstable.h): each
 * .ldb file the manifest lists is opened read-only, its index decoded into
 * per-block key bounds at open, and a Get is a binary search, one block read
 * (CRC32C checked, Snappy decompressed, kept in a small cache) and a scan of
 * that block. No LevelDB handle, so no LOCK file and no writes. */
#include "corpus/shard_reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/array.h"
#include "util/crc32c.h"
#include "util/file.h"
#include "util/sstable.h"
#include "util/status.h"

#define SHARD_READER_CACHE_BYTES (16u << 20) /* decoded blocks kept per shard */
#define SHARD_READER_BLOCK_GUESS 4096u       /* LevelDB's block size: sizes the cache */
#define SHARD_READER_CHECK_NS 1000000000LL   /* stat the files' paths this often */
#define SHARD_TABLE_MAX ((size_t)1 << 32)   /* a table file larger is not ddpt's */
#define INTERNAL_KEY_BYTES 16                /* 8-byte key + LevelDB's (sequence, type) tag */
#define VALUE_TYPE 1                         /* LevelDB's kTypeValue; 0 is a deletion */

typedef struct table {
  char *path; /* "corpus/shard-00003/000005.ldb" */
  int fd;
  struct stat st;         /* at open: a change is noticed against it */
  uint64_t first, last;   /* keys, from the manifest */
  uint32_t crc32c;        /* of the whole file, from the manifest */
  size_t num_blocks;
  uint64_t *bound;        /* (num_blocks) no key of block i is above bound[i] */
  sstable_handle *blocks; /* (num_blocks) */
} table;

typedef struct cached_block {
  size_t table, block; /* table == SIZE_MAX: empty */
  uint8_t *data;
  size_t len, cap;
} cached_block;

struct shard_reader {
  char *path; /* the shard's directory, for messages */
  uint64_t n;
  size_t seq_len;
  int id_bytes;
  int64_t vocab_size;
  int32_t *tags; /* (seq_len) the tags of the last tag record read */
  table *tables; /* (num_tables) in key order */
  size_t num_tables;
  cached_block *cache; /* (cache_slots) direct-mapped by block */
  size_t cache_slots;
  uint8_t *raw; /* a block as read, with its trailer */
  size_t raw_cap;
  long long next_check_ns;
};

void shard_key_encode(uint64_t index, uint8_t key[8]) {
  for (int i = 7; i >= 0; i--, index >>= 8) key[i] = (uint8_t)index;
}

static uint64_t key_decode(const uint8_t key[8]) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | key[i];
  return v;
}

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* ---------------------------------------------------------------- blocks */

/* raw holds the block at h with its trailer: checks it and writes its
 * contents, decompressed, to *out (capacity *cap, grown), *len bytes. */
static int block_decode(const uint8_t *raw, sstable_handle h, const char *kind, const char *what,
                        uint8_t **out, size_t *cap, size_t *len, char **err) {
  int type, rc = sstable_block_check(raw, h.size, h.offset, kind, what, &type, err);
  if (rc) return rc;
  size_t n = (size_t)h.size;
  if (type == SSTABLE_SNAPPY &&
      snappy_uncompressed_length((const char *)raw, n, &n) != SNAPPY_OK)
    return status_set(err, ST_CORRUPT, "%s: the %s block at offset %llu is not valid Snappy data",
                      what, kind, (unsigned long long)h.offset);
  if (type != SSTABLE_SNAPPY && type != SSTABLE_NO_COMPRESSION)
    return status_set(err, ST_CORRUPT, "%s: the %s block at offset %llu has unknown compression "
                      "type %d", what, kind, (unsigned long long)h.offset, type);
  if (n > SHARD_TABLE_MAX || array_grow(out, cap, n ? n : 1, 1) != ST_OK)
    return status_set(err, ST_NOMEM, "%s: out of memory for the %s block at offset %llu (%zu "
                      "bytes)", what, kind, (unsigned long long)h.offset, n);
  if (type == SSTABLE_NO_COMPRESSION) {
    memcpy(*out, raw, n);
  } else if (snappy_uncompress((const char *)raw, (size_t)h.size, (char *)*out, &n) != SNAPPY_OK) {
    return status_set(err, ST_CORRUPT, "%s: the %s block at offset %llu is not valid Snappy data",
                      what, kind, (unsigned long long)h.offset);
  }
  *len = n;
  return ST_OK;
}

/* The user key of an entry of a data block: 8 bytes and a value tag. */
static int entry_key(const sstable_iter *it, const char *what, uint64_t *key, char **err) {
  if (it->key_len != INTERNAL_KEY_BYTES)
    return status_set(err, ST_CORRUPT, "%s: the data block at offset %llu holds a key of %zu "
                      "bytes, not %d: not a ddpt shard", what, (unsigned long long)it->b->offset,
                      it->key_len, INTERNAL_KEY_BYTES);
  *key = key_decode(it->key);
  if (it->key[8] != VALUE_TYPE)
    return status_set(err, ST_CORRUPT, "%s: key %llu is a deletion or of unknown type %u: the "
                      "shard was written to after ddpt shard finished it", what,
                      (unsigned long long)*key, it->key[8]);
  return ST_OK;
}

/* An index key as the largest 8-byte key its block may hold. LevelDB
 * shortens index keys: a user key of fewer than 8 bytes p bounds the keys
 * below p followed by zeros; of 8 or more, its first 8 bytes. */
static int index_bound(const sstable_iter *it, const char *what, uint64_t *bound, char **err) {
  if (it->key_len < 8 || it->key_len - 8 == 0)
    return status_set(err, ST_CORRUPT, "%s: an index key of %zu bytes: not a ddpt shard", what,
                      it->key_len);
  size_t ulen = it->key_len - 8;
  if (ulen >= 8) {
    *bound = key_decode(it->key);
    return ST_OK;
  }
  uint64_t p = 0;
  for (size_t i = 0; i < ulen; i++) p = p << 8 | it->key[i];
  p <<= 8 * (8 - ulen);
  if (p == 0) return status_set(err, ST_CORRUPT, "%s: an index key below every key", what);
  *bound = p - 1;
  return ST_OK;
}

/* ---------------------------------------------------------------- tables */

static void table_close(table *t) {
  if (t->fd >= 0) close(t->fd);
  free(t->path);
  free(t->bound);
  free(t->blocks);
}

/* The index block of the table open on t->fd: its entries as bounds and
 * handles, the blocks lying in order inside the file. */
static int table_read_index(table *t, uint64_t size, char **err) {
  uint8_t footer[SSTABLE_FOOTER_LEN], *raw = NULL, *data = NULL;
  size_t data_cap = 0, len = 0;
  sstable_handle meta, ih;
  sstable_block b = {"index", 0, NULL, 0};
  sstable_iter it = {0};
  int rc, more;
  if (size < SSTABLE_FOOTER_LEN)
    return status_set(err, ST_CORRUPT, "%s: %llu bytes, shorter than a table footer", t->path,
                      (unsigned long long)size);
  if ((rc = file_read_at(t->fd, footer, sizeof footer, size - SSTABLE_FOOTER_LEN, t->path, err)) ||
      (rc = sstable_footer_parse(footer, t->path, &meta, &ih, err)))
    return rc;
  if (ih.offset > size || ih.size + SSTABLE_TRAILER_LEN > size - ih.offset)
    return status_set(err, ST_CORRUPT, "%s: the index block runs past the file's end", t->path);
  if (!(raw = malloc((size_t)ih.size + SSTABLE_TRAILER_LEN))) {
    rc = status_set(err, ST_NOMEM, "%s: out of memory reading the index", t->path);
    goto done;
  }
  if ((rc = file_read_at(t->fd, raw, (size_t)ih.size + SSTABLE_TRAILER_LEN, ih.offset, t->path,
                         err)) ||
      (rc = block_decode(raw, ih, "index", t->path, &data, &data_cap, &len, err)))
    goto done;
  b = (sstable_block){"index", ih.offset, data, len};
  size_t bcap = 0, hcap = 0;
  if ((rc = sstable_iter_init(&it, &b, t->path, err))) goto done;
  while (!(rc = sstable_iter_next(&it, t->path, &more, err)) && more) {
    size_t i = t->num_blocks;
    sstable_handle h;
    const uint8_t *vend = it.value + it.value_len;
    if (array_grow(&t->bound, &bcap, i + 1, sizeof *t->bound) ||
        array_grow(&t->blocks, &hcap, i + 1, sizeof *t->blocks)) {
      rc = status_set(err, ST_NOMEM, "%s: out of memory reading the index", t->path);
      break;
    }
    if (sstable_handle_get(it.value, vend, &h) != vend || h.offset > ih.offset ||
        h.size + SSTABLE_TRAILER_LEN > ih.offset - h.offset ||
        (i > 0 && h.offset < t->blocks[i - 1].offset + t->blocks[i - 1].size)) {
      rc = status_set(err, ST_CORRUPT, "%s: index entry %zu is not a block inside the file",
                      t->path, i);
      break;
    }
    if ((rc = index_bound(&it, t->path, &t->bound[i], err))) break;
    if (i > 0 && t->bound[i] < t->bound[i - 1]) {
      rc = status_set(err, ST_CORRUPT, "%s: index entries out of order", t->path);
      break;
    }
    t->blocks[i] = h;
    t->num_blocks++;
  }
  if (!rc && t->num_blocks == 0)
    rc = status_set(err, ST_CORRUPT, "%s: a table without data blocks", t->path);
done:
  sstable_iter_free(&it);
  free(raw);
  free(data);
  return rc;
}

static int table_open(const char *shard, const manifest_file *f, table *t, char **err) {
  t->fd = -1;
  t->first = f->first;
  t->last = f->last;
  t->crc32c = f->crc32c;
  if (!(t->path = file_path_join(shard, f->name)))
    return status_set(err, ST_NOMEM, "out of memory opening %s", shard);
  if ((t->fd = open(t->path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(t->fd, &t->st) != 0)
    return status_set(err, errno == ENOENT ? ST_CORRUPT : ST_IO, "shard %s: cannot open %s: %s "
                      "(the manifest lists it: the shard was changed after ddpt shard finished "
                      "it, or the corpus is incomplete; reshard)", shard, t->path,
                      strerror(errno));
  if ((uint64_t)t->st.st_size != f->size)
    return status_set(err, ST_CORRUPT, "shard %s: %s is %lld bytes, the manifest says %llu: the "
                      "shard was changed after ddpt shard finished it; reshard", shard, t->path,
                      (long long)t->st.st_size, (unsigned long long)f->size);
  return table_read_index(t, f->size, err);
}

/* ---------------------------------------------------------------- reader */

int shard_reader_open(const char *dir, const manifest *m, const manifest_shard *s,
                      shard_reader **out, char **err) {
  shard_reader *r = calloc(1, sizeof *r);
  int rc = ST_OK;
  if (!r || !(r->path = file_path_join(dir, s->name)) ||
      !(r->tags = malloc(m->seq_len * sizeof *r->tags)) ||
      !(r->tables = calloc(s->num_files, sizeof *r->tables))) {
    rc = status_set(err, ST_NOMEM, "out of memory opening shard %s of %s", s->name, dir);
    goto fail;
  }
  r->n = s->sequences;
  r->seq_len = m->seq_len;
  r->id_bytes = m->id_bytes;
  r->vocab_size = m->vocab_size;
  for (size_t i = 0; i < s->num_files; i++) {
    r->num_tables++;
    if ((rc = table_open(r->path, &s->files[i], &r->tables[i], err))) goto fail;
  }
  r->cache_slots = SHARD_READER_CACHE_BYTES / SHARD_READER_BLOCK_GUESS;
  if (!(r->cache = calloc(r->cache_slots, sizeof *r->cache))) {
    rc = status_set(err, ST_NOMEM, "out of memory opening shard %s", r->path);
    goto fail;
  }
  for (size_t i = 0; i < r->cache_slots; i++) r->cache[i].table = SIZE_MAX;
  r->next_check_ns = now_ns() + SHARD_READER_CHECK_NS;
  *out = r;
  return ST_OK;
fail:
  shard_reader_close(r);
  return rc;
}

void shard_reader_close(shard_reader *r) {
  if (!r) return;
  for (size_t i = 0; i < r->num_tables; i++) table_close(&r->tables[i]);
  for (size_t i = 0; r->cache && i < r->cache_slots; i++) free(r->cache[i].data);
  free(r->cache);
  free(r->tables);
  free(r->raw);
  free(r->path);
  free(r->tags);
  free(r);
}

/* The file of t still is the bytes opened: same inode, size and times. */
static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
         a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int changed(const shard_reader *r, const table *t, const char *how, char **err) {
  return status_set(err, ST_CORRUPT, "shard %s changed while it was read: %s %s since it was "
                    "opened; a corpus must not change while jobs read it: stop them, reshard "
                    "into a new directory", r->path, t->path, how);
}

int shard_reader_check(shard_reader *r, char **err) {
  for (size_t i = 0; i < r->num_tables; i++) {
    table *t = &r->tables[i];
    struct stat now;
    if (stat(t->path, &now) != 0) return changed(r, t, "was removed or renamed", err);
    if (now.st_dev != t->st.st_dev || now.st_ino != t->st.st_ino)
      return changed(r, t, "was replaced by another file", err);
    if (!same_file(&now, &t->st)) return changed(r, t, "was written to", err);
  }
  r->next_check_ns = now_ns() + SHARD_READER_CHECK_NS;
  return ST_OK;
}

/* Block b of table ti, decoded, through the cache. The fstat after the
 * read makes a write to the file that overlapped it an error, never data. */
static int block_get(shard_reader *r, size_t ti, size_t b, cached_block **out, char **err) {
  table *t = &r->tables[ti];
  cached_block *c = &r->cache[(ti * 7919u + b) % r->cache_slots];
  if (c->table == ti && c->block == b) {
    *out = c;
    return ST_OK;
  }
  sstable_handle h = t->blocks[b];
  size_t need = (size_t)h.size + SSTABLE_TRAILER_LEN;
  c->table = SIZE_MAX;
  if (array_grow(&r->raw, &r->raw_cap, need, 1))
    return status_set(err, ST_NOMEM, "%s: out of memory reading a block", t->path);
  struct stat now;
  int rc = file_read_at(t->fd, r->raw, need, h.offset, t->path, err);
  if (!rc && (fstat(t->fd, &now) != 0 || !same_file(&now, &t->st)))
    return changed(r, t, now.st_nlink == 0 ? "was replaced or removed" : "was written to", err);
  if (!rc) rc = block_decode(r->raw, h, "data", t->path, &c->data, &c->cap, &c->len, err);
  if (rc) return rc;
  c->table = ti;
  c->block = b;
  *out = c;
  return ST_OK;
}

/* The value of key in table ti: *val NULL when the table lacks it. */
static int table_get(shard_reader *r, size_t ti, uint64_t key, const uint8_t **val, size_t *len,
                     char **err) {
  table *t = &r->tables[ti];
  size_t lo = 0, hi = t->num_blocks; /* the first block whose bound is >= key */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->bound[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  *val = NULL;
  if (lo == t->num_blocks) return ST_OK;
  cached_block *c = NULL;
  int rc = block_get(r, ti, lo, &c, err), more;
  if (rc) return rc;
  sstable_block b = {"data", t->blocks[lo].offset, c->data, c->len};
  sstable_iter it;
  rc = sstable_iter_init(&it, &b, t->path, err);
  while (!rc && !(rc = sstable_iter_next(&it, t->path, &more, err)) && more) {
    uint64_t k;
    if ((rc = entry_key(&it, t->path, &k, err)) || k > key) break;
    if (k == key) {
      *val = it.value;
      *len = it.value_len;
      break;
    }
  }
  sstable_iter_free(&it);
  return rc;
}

/* Decodes a record of the shard. */
static int record_read(shard_reader *r, const uint8_t *val, size_t len, int32_t *ids, record *rec,
                       char **err) {
  return record_decode(val, len, r->id_bytes, ids, r->tags, r->seq_len, rec, err);
}

/* Every id of rec below the vocab size: verify's check (training checks the
 * ids it embeds itself, and the manifest's max_id at open). */
static int record_check_ids(const shard_reader *r, const record *rec, char **err) {
  for (size_t i = 0; i < rec->n; i++)
    if (rec->ids[i] >= r->vocab_size)
      return status_set(err, ST_CORRUPT, "id %d at position %zu is not below the vocab size %lld",
                        rec->ids[i], i, (long long)r->vocab_size);
  return ST_OK;
}

int shard_reader_get(shard_reader *r, uint64_t index, int32_t *ids, record *rec, char **err) {
  int rc;
  if (now_ns() >= r->next_check_ns && (rc = shard_reader_check(r, err))) return rc;
  size_t lo = 0, hi = r->num_tables; /* the last table whose first key is <= index */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (r->tables[mid].first <= index) lo = mid;
    else hi = mid;
  }
  const uint8_t *val = NULL;
  size_t len = 0;
  if (index < r->n && (rc = table_get(r, lo, index, &val, &len, err)))
    return status_wrap(err, rc, "shard %s, key %llu", r->path, (unsigned long long)index);
  if (!val)
    return status_set(err, ST_CORRUPT, "shard %s: key %llu is missing (the manifest says %llu "
                      "records); the corpus is damaged: reshard it", r->path,
                      (unsigned long long)index, (unsigned long long)r->n);
  if ((rc = record_read(r, val, len, ids, rec, err)))
    return status_wrap(err, rc, "shard %s, key %llu", r->path, (unsigned long long)index);
  return ST_OK;
}

int record_check_task(const record *rec, const manifest *m, char **err) {
  static const record_kind want[] = {[MANIFEST_TASK_PRETRAIN] = RECORD_PLAIN,
                                     [MANIFEST_TASK_CLASSIFY] = RECORD_CLASS,
                                     [MANIFEST_TASK_TAG] = RECORD_TAGS};
  if (rec->kind != want[m->task])
    return status_set(err, ST_CORRUPT, "record is not a %s record, as the manifest's task says",
                      manifest_task_name(m->task));
  int32_t nl = (int32_t)m->num_labels;
  if (rec->kind == RECORD_CLASS && rec->label >= nl)
    return status_set(err, ST_CORRUPT, "record class label %d is not below the %d labels",
                      rec->label, nl);
  for (size_t i = 0; rec->kind == RECORD_TAGS && i < rec->n; i++)
    if (rec->tags[i] >= nl)
      return status_set(err, ST_CORRUPT, "record tag %d at position %zu is not below the %d "
                        "labels", rec->tags[i], i, nl);
  return ST_OK;
}

/* ------------------------------------------------------- whole-file walks */

/* Called for each entry of a table in order; *next is the key expected. */
typedef int (*entry_fn)(void *ctx, uint64_t key, const uint8_t *val, size_t len, char **err);

/* Walks every block of the table buf[0..len) (what names it): each block's
 * CRC32C, each data block's entries with keys strictly ascending. */
static int table_walk(const uint8_t *buf, size_t len, const char *what, entry_fn fn, void *ctx,
                      char **err) {
  sstable_handle meta, ih;
  uint8_t *index = NULL, *data = NULL;
  size_t icap = 0, ilen = 0, dcap = 0, dlen = 0;
  sstable_iter ii = {0};
  int rc, more;
  if (len < SSTABLE_FOOTER_LEN)
    return status_set(err, ST_CORRUPT, "%s: %zu bytes, shorter than a table footer", what, len);
  if ((rc = sstable_footer_parse(buf + len - SSTABLE_FOOTER_LEN, what, &meta, &ih, err))) return rc;
  size_t limit = len - SSTABLE_FOOTER_LEN;
  sstable_handle hs[2] = {meta, ih};
  for (int i = 0; i < 2; i++)
    if (hs[i].offset > limit || hs[i].size + SSTABLE_TRAILER_LEN > limit - hs[i].offset)
      return status_set(err, ST_CORRUPT, "%s: the %s block runs past the file's end", what,
                        i ? "index" : "metaindex");
  if ((rc = block_decode(buf + meta.offset, meta, "metaindex", what, &index, &icap, &ilen, err)) ||
      (rc = block_decode(buf + ih.offset, ih, "index", what, &index, &icap, &ilen, err)))
    goto done;
  sstable_block ib = {"index", ih.offset, index, ilen};
  int have_prev = 0;
  uint64_t prev = 0;
  if ((rc = sstable_iter_init(&ii, &ib, what, err))) goto done;
  while (!(rc = sstable_iter_next(&ii, what, &more, err)) && more) {
    sstable_handle h;
    const uint8_t *vend = ii.value + ii.value_len;
    if (sstable_handle_get(ii.value, vend, &h) != vend || h.offset > limit ||
        h.size + SSTABLE_TRAILER_LEN > limit - h.offset) {
      rc = status_set(err, ST_CORRUPT, "%s: an index entry is not a block inside the file", what);
      break;
    }
    if ((rc = block_decode(buf + h.offset, h, "data", what, &data, &dcap, &dlen, err))) break;
    sstable_block db = {"data", h.offset, data, dlen};
    sstable_iter di;
    rc = sstable_iter_init(&di, &db, what, err);
    while (!rc && !(rc = sstable_iter_next(&di, what, &more, err)) && more) {
      uint64_t key;
      if ((rc = entry_key(&di, what, &key, err))) break;
      if (have_prev && key <= prev) {
        rc = status_set(err, ST_CORRUPT, "%s: key %llu after key %llu: out of order", what,
                        (unsigned long long)key, (unsigned long long)prev);
        break;
      }
      have_prev = 1;
      prev = key;
      rc = fn(ctx, key, di.value, di.value_len, err);
    }
    sstable_iter_free(&di);
    if (rc) break;
  }
done:
  sstable_iter_free(&ii);
  free(index);
  free(data);
  return rc;
}

typedef struct verify_ctx {
  shard_reader *r;
  const manifest *m;
  int32_t *ids;
  uint64_t next, tokens;
} verify_ctx;

static int verify_entry(void *ctx, uint64_t key, const uint8_t *val, size_t len, char **err) {
  verify_ctx *v = ctx;
  if (key != v->next)
    return status_set(err, ST_CORRUPT, "shard %s: key %llu found where key %llu belongs (keys "
                      "must be dense)", v->r->path, (unsigned long long)key,
                      (unsigned long long)v->next);
  record rec;
  int rc = record_read(v->r, val, len, v->ids, &rec, err);
  if (!rc) rc = record_check_ids(v->r, &rec, err);
  if (!rc) rc = record_check_task(&rec, v->m, err);
  if (rc) return status_wrap(err, rc, "shard %s, key %llu", v->r->path, (unsigned long long)key);
  v->tokens += rec.n;
  v->next++;
  return ST_OK;
}

/* The whole of t, read through the descriptor opened (not the path, which
 * may name another file by now). */
static int table_read_all(const table *t, uint8_t **buf, char **err) {
  size_t size = (size_t)t->st.st_size;
  if (!(*buf = malloc(size ? size : 1)))
    return status_set(err, ST_NOMEM, "out of memory reading %s", t->path);
  return file_read_at(t->fd, *buf, size, 0, t->path, err);
}

int shard_reader_verify(shard_reader *r, const manifest *m, uint64_t *tokens, char **err) {
  verify_ctx v = {r, m, malloc(r->seq_len * sizeof(int32_t)), 0, 0};
  int rc = v.ids ? ST_OK : status_set(err, ST_NOMEM, "out of memory verifying %s", r->path);
  for (size_t i = 0; i < r->num_tables && !rc; i++) {
    const table *t = &r->tables[i];
    uint8_t *buf = NULL;
    if (!(rc = table_read_all(t, &buf, err))) {
      size_t size = (size_t)t->st.st_size;
      rc = table_walk(buf, size, t->path, verify_entry, &v, err);
      uint32_t crc = rc ? 0 : crc32c(buf, size);
      if (!rc && (v.next != t->last + 1 || crc != t->crc32c))
        rc = status_set(err, ST_CORRUPT, "shard %s: %s %s (CRC32C %08x, keys to %llu; the "
                        "manifest says %08x, keys to %llu): the shard was changed after ddpt "
                        "shard finished it; reshard", r->path, t->path,
                        crc != t->crc32c ? "fails its file checksum" : "holds other keys", crc,
                        (unsigned long long)v.next - 1, t->crc32c, (unsigned long long)t->last);
    }
    free(buf);
  }
  if (!rc && v.next != r->n)
    rc = status_set(err, ST_CORRUPT, "shard %s holds %llu records, the manifest says %llu",
                    r->path, (unsigned long long)v.next, (unsigned long long)r->n);
  if (!rc && (rc = shard_reader_check(r, err)) == ST_OK) *tokens += v.tokens;
  free(v.ids);
  return rc;
}

/* ------------------------------------------------------ describing files */

typedef struct range_ctx {
  uint64_t first, last, count;
} range_ctx;

static int range_entry(void *ctx, uint64_t key, const uint8_t *val, size_t len, char **err) {
  (void)val, (void)len, (void)err;
  range_ctx *c = ctx;
  if (c->count++ == 0) c->first = key;
  c->last = key;
  return ST_OK;
}

static int is_table_name(const char *name) {
  size_t n = strlen(name);
  return n > 4 && strcmp(name + n - 4, ".ldb") == 0;
}

/* Describes the table file dir/name into f. */
static int describe_file(const char *dir, const char *name, manifest_file *f, char **err) {
  char *path = file_path_join(dir, name), *buf = NULL;
  size_t len = 0;
  range_ctx c = {0, 0, 0};
  if (!path) return status_set(err, ST_NOMEM, "out of memory describing %s", dir);
  int rc = strlen(name) < sizeof f->name ? ST_OK
           : status_set(err, ST_INVALID, "%s: a table file name longer than %zu bytes", path,
                        sizeof f->name - 1);
  if (!rc) rc = file_read_all(path, SHARD_TABLE_MAX, &buf, &len, err);
  if (!rc) rc = table_walk((const uint8_t *)buf, len, path, range_entry, &c, err);
  if (!rc && c.count != c.last - c.first + 1)
    rc = status_set(err, ST_CORRUPT, "%s: keys %llu..%llu are not dense", path,
                    (unsigned long long)c.first, (unsigned long long)c.last);
  if (!rc && c.count == 0) rc = status_set(err, ST_CORRUPT, "%s: a table without keys", path);
  if (!rc) {
    *f = (manifest_file){.size = len, .crc32c = crc32c(buf, len), .first = c.first, .last = c.last};
    snprintf(f->name, sizeof f->name, "%s", name);
  }
  free(buf);
  free(path);
  return rc;
}

static int by_first_key(const void *a, const void *b) {
  const manifest_file *x = a, *y = b;
  return (x->first > y->first) - (x->first < y->first);
}

int shard_files_describe(const char *path, manifest_shard *s, char **err) {
  DIR *d = opendir(path);
  if (!d) return status_set(err, ST_IO, "cannot list shard %s: %s", path, strerror(errno));
  size_t cap = 0;
  int rc = ST_OK;
  struct dirent *e;
  manifest_shards_free_files(s, 1);
  while (!rc && (e = readdir(d)) != NULL) {
    if (!is_table_name(e->d_name)) continue;
    if (array_grow(&s->files, &cap, s->num_files + 1, sizeof *s->files)) {
      rc = status_set(err, ST_NOMEM, "out of memory describing shard %s", path);
      break;
    }
    if (!(rc = describe_file(path, e->d_name, &s->files[s->num_files], err))) s->num_files++;
  }
  closedir(d);
  if (rc) return rc;
  qsort(s->files, s->num_files, sizeof *s->files, by_first_key);
  uint64_t next = 0;
  for (size_t i = 0; i < s->num_files; i++) {
    if (s->files[i].first != next)
      return status_set(err, ST_CORRUPT, "shard %s: its tables hold keys from %llu where %llu "
                        "belongs: not one finished shard", path,
                        (unsigned long long)s->files[i].first, (unsigned long long)next);
    next = s->files[i].last + 1;
  }
  if (next != s->sequences)
    return status_set(err, ST_CORRUPT, "shard %s: its tables hold %llu records, %llu were "
                      "written: it is not fully compacted", path, (unsigned long long)next,
                      (unsigned long long)s->sequences);
  return ST_OK;
}
