/* Reading one shard through LevelDB's C API: Gets by key for training,
 * an iterator for verification. Checksums are verified on every read, so a
 * damaged block is reported instead of returning wrong ids. */
#include "corpus/shard_reader.h"

#include <leveldb/c.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/status.h"

struct shard_reader {
  char *path;
  uint64_t n;
  size_t seq_len;
  int id_bytes;
  int32_t *tags; /* (seq_len) the tags of the last tag record read */
  leveldb_t *db;
  leveldb_options_t *options;
  leveldb_cache_t *cache;
  leveldb_readoptions_t *read;
};

#define SHARD_READER_CACHE_BYTES (16u << 20)
#define SHARD_READER_LOCK_RETRIES 200 /* 50 ms apart: 10 s */

void shard_key_encode(uint64_t index, uint8_t key[8]) {
  for (int i = 7; i >= 0; i--, index >>= 8) key[i] = (uint8_t)index;
}

static uint64_t key_decode(const uint8_t key[8]) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | key[i];
  return v;
}

int shard_reader_open(const char *path, uint64_t n, size_t seq_len, int id_bytes,
                      shard_reader **out, char **err) {
  shard_reader *r = calloc(1, sizeof *r);
  char *lerr = NULL;
  int rc;
  if (!r || !(r->path = strdup(path)) || !(r->tags = malloc(seq_len * sizeof *r->tags))) {
    rc = status_set(err, ST_NOMEM, "out of memory opening shard %s", path);
    goto fail;
  }
  r->n = n;
  r->seq_len = seq_len;
  r->id_bytes = id_bytes;
  r->options = leveldb_options_create();
  r->cache = leveldb_cache_create_lru(SHARD_READER_CACHE_BYTES);
  r->read = leveldb_readoptions_create();
  leveldb_options_set_cache(r->options, r->cache);
  leveldb_options_set_create_if_missing(r->options, 0);
  leveldb_options_set_paranoid_checks(r->options, 1);
  leveldb_readoptions_set_verify_checksums(r->read, 1);
  /* LevelDB holds a lock on the database while it is open. Ranks on one
   * host that read the validation shard at the same moment take turns. */
  for (int attempt = 0;; attempt++) {
    r->db = leveldb_open(r->options, path, &lerr);
    int busy = lerr && strstr(lerr, "/LOCK: ") && !strstr(lerr, "already held by process");
    if (!busy || attempt == SHARD_READER_LOCK_RETRIES) break;
    leveldb_free(lerr);
    lerr = NULL;
    nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
  }
  if (lerr) {
    rc = status_set(err, ST_CORRUPT, "cannot open shard %s: %s (the corpus is damaged or "
                    "another process holds it open)", path, lerr);
    goto fail;
  }
  *out = r;
  return ST_OK;
fail:
  leveldb_free(lerr);
  shard_reader_close(r);
  return rc;
}

void shard_reader_close(shard_reader *r) {
  if (!r) return;
  if (r->db) leveldb_close(r->db);
  if (r->read) leveldb_readoptions_destroy(r->read);
  if (r->options) leveldb_options_destroy(r->options);
  if (r->cache) leveldb_cache_destroy(r->cache);
  free(r->path);
  free(r->tags);
  free(r);
}

int shard_reader_get(shard_reader *r, uint64_t index, int32_t *ids, record *rec, char **err) {
  uint8_t key[8];
  shard_key_encode(index, key);
  size_t len = 0;
  char *lerr = NULL;
  char *val = leveldb_get(r->db, r->read, (const char *)key, sizeof key, &len, &lerr);
  if (lerr) {
    int rc = status_set(err, ST_CORRUPT, "shard %s, key %llu: %s", r->path,
                        (unsigned long long)index, lerr);
    leveldb_free(lerr);
    return rc;
  }
  if (!val)
    return status_set(err, ST_CORRUPT, "shard %s: key %llu is missing (the manifest says %llu "
                      "records); the corpus is damaged: reshard it", r->path,
                      (unsigned long long)index, (unsigned long long)r->n);
  int rc = record_decode((const uint8_t *)val, len, r->id_bytes, ids, r->tags, r->seq_len, rec,
                         err);
  leveldb_free(val);
  if (rc) return status_wrap(err, rc, "shard %s, key %llu", r->path, (unsigned long long)index);
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

int shard_reader_verify(shard_reader *r, const manifest *m, uint64_t *tokens, char **err) {
  int64_t vocab_size = m->vocab_size;
  int32_t *ids = malloc(r->seq_len * sizeof *ids);
  if (!ids) return status_set(err, ST_NOMEM, "out of memory verifying %s", r->path);
  leveldb_iterator_t *it = leveldb_create_iterator(r->db, r->read);
  uint64_t expect = 0;
  int rc = ST_OK;
  for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it), expect++) {
    size_t klen, vlen;
    const char *k = leveldb_iter_key(it, &klen);
    const char *v = leveldb_iter_value(it, &vlen);
    if (klen != 8) {
      rc = status_set(err, ST_CORRUPT, "shard %s: key after %llu is %zu bytes, not 8", r->path,
                      (unsigned long long)expect, klen);
      goto done;
    }
    uint64_t key = key_decode((const uint8_t *)k);
    if (key != expect) {
      rc = status_set(err, ST_CORRUPT, "shard %s: key %llu found where key %llu belongs "
                      "(keys must be dense)", r->path, (unsigned long long)key,
                      (unsigned long long)expect);
      goto done;
    }
    record rec;
    rc = record_decode((const uint8_t *)v, vlen, r->id_bytes, ids, r->tags, r->seq_len, &rec,
                       err);
    if (!rc) rc = record_check_task(&rec, m, err);
    if (rc) {
      status_wrap(err, rc, "shard %s, key %llu", r->path, (unsigned long long)key);
      goto done;
    }
    for (size_t i = 0; i < rec.n; i++)
      if (ids[i] >= vocab_size) {
        rc = status_set(err, ST_CORRUPT, "shard %s, key %llu: id %d at position %zu is not "
                        "below the vocab size %lld", r->path, (unsigned long long)key, ids[i], i,
                        (long long)vocab_size);
        goto done;
      }
    *tokens += rec.n;
  }
  char *lerr = NULL;
  leveldb_iter_get_error(it, &lerr);
  if (lerr) {
    rc = status_set(err, ST_CORRUPT, "shard %s: after key %llu: %s", r->path,
                    (unsigned long long)expect, lerr);
    leveldb_free(lerr);
    goto done;
  }
  if (expect != r->n)
    rc = status_set(err, ST_CORRUPT, "shard %s holds %llu records, the manifest says %llu",
                    r->path, (unsigned long long)expect, (unsigned long long)r->n);
done:
  leveldb_iter_destroy(it);
  free(ids);
  return rc;
}
