/* The output side of ddpt shard, shared by pretraining and labelled corpora:
 * the output directory, the vocab copied into it, the vocab's special ids,
 * and sets of LevelDB shards that records are routed to round-robin. */
#include "corpus/shard_out.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "corpus/shard_reader.h"
#include "util/rng.h"
#include "util/array.h"
#include "util/file.h"
#include "util/sha256.h"
#include "util/status.h"

#define BATCH_FLUSH_BYTES (1u << 20)   /* LevelDB write batch size per shard */
#define WRITE_BUFFER_BYTES (8u << 20)  /* LevelDB memtable per shard */
/* Table files of up to 64 MiB (LevelDB's default is 2): a reader holds each
 * file of its shards open, so fewer files mean fewer descriptors. */
#define MAX_FILE_BYTES (64u << 20)

/* ------------------------------------------------------------ output dir */

typedef struct name_list {
  char **names;
  size_t n, cap;
} name_list;

static void name_list_free(name_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->names[i]);
  free(l->names);
}

static int name_list_push(name_list *l, const char *name, char **err) {
  if (array_grow(&l->names, &l->cap, l->n + 1, sizeof *l->names) != ST_OK ||
      !(l->names[l->n] = strdup(name)))
    return status_set(err, ST_NOMEM, "out of memory listing the output directory");
  l->n++;
  return ST_OK;
}

static int is_ours(const char *name) {
  unsigned n;
  char tail;
  if (sscanf(name, "shard-%5u%c", &n, &tail) == 1 && strlen(name) == 11) return 1;
  if (sscanf(name, "valid-%5u%c", &n, &tail) == 1 && strlen(name) == 11) return 1;
  return strcmp(name, MANIFEST_FILE) == 0 || strcmp(name, MANIFEST_VOCAB_FILE) == 0 ||
         strncmp(name, "." MANIFEST_FILE ".tmp-", sizeof MANIFEST_FILE + 5) == 0;
}

/* Lists dir's entries other than . and .. into names. */
static int list_dir(const char *dir, name_list *names, char **err) {
  DIR *d = opendir(dir);
  if (!d) return status_set(err, ST_IO, "cannot list directory %s: %s", dir, strerror(errno));
  int rc = ST_OK;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && !rc) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    rc = name_list_push(names, e->d_name, err);
  }
  closedir(d);
  return rc;
}

/* Removes dir/name, a shard's database or a file; a missing file is fine. */
static int remove_entry(const char *dir, const char *name, char **err) {
  char *path = file_path_join(dir, name);
  if (!path) return status_set(err, ST_NOMEM, "out of memory removing %s from %s", name, dir);
  int rc = ST_OK;
  if (strncmp(name, "shard-", 6) == 0 || strncmp(name, "valid-", 6) == 0) {
    char *lerr = NULL;
    leveldb_options_t *o = leveldb_options_create();
    leveldb_destroy_db(o, path, &lerr);
    leveldb_options_destroy(o);
    if (lerr) {
      rc = status_set(err, ST_IO, "cannot remove old shard %s: %s", path, lerr);
      leveldb_free(lerr);
    }
    rmdir(path);
  } else if (unlink(path) != 0 && errno != ENOENT) {
    rc = status_set(err, ST_IO, "cannot remove %s: %s", path, strerror(errno));
  }
  free(path);
  return rc;
}

/* Removes the corpus in dir, manifest first so that a crash midway leaves
 * it incomplete rather than wrong. Refuses if dir holds anything else. */
int shard_out_remove(const char *dir, char **err) {
  name_list names = {0};
  int rc = list_dir(dir, &names, err);
  for (size_t i = 0; i < names.n && !rc; i++)
    if (!is_ours(names.names[i]))
      rc = status_set(err, ST_INVALID, "output directory %s holds %s, which ddpt shard did not "
                      "write: --overwrite replaces only a corpus; remove it or choose another "
                      "directory", dir, names.names[i]);
  if (!rc) rc = remove_entry(dir, MANIFEST_FILE, err);
  for (size_t i = 0; i < names.n && !rc; i++) rc = remove_entry(dir, names.names[i], err);
  name_list_free(&names);
  return rc;
}

/* Makes out_dir an empty directory (*created: it did not exist). An
 * existing corpus is replaced only with overwrite. */
int shard_out_prepare(const char *dir, int overwrite, int *created, char **err) {
  struct stat st;
  *created = 0;
  if (stat(dir, &st) != 0) {
    if (mkdir(dir, 0755) != 0)
      return status_set(err, ST_IO, "cannot create output directory %s: %s", dir, strerror(errno));
    *created = 1;
    return ST_OK;
  }
  if (!S_ISDIR(st.st_mode))
    return status_set(err, ST_INVALID, "output %s exists and is not a directory", dir);
  name_list names = {0};
  int rc = list_dir(dir, &names, err);
  if (!rc && names.n > 0 && !overwrite)
    rc = status_set(err, ST_INVALID, "output directory %s is not empty: choose an empty one, or "
                    "pass --overwrite to replace the corpus in it", dir);
  name_list_free(&names);
  return rc ? rc : shard_out_remove(dir, err);
}

/* Copies from to path, fsynced: the manifest, written after it, must never
 * name a copy that a crash left short. */
static int copy_file(const char *from, const char *path, char **err) {
  FILE *in = fopen(from, "rb");
  if (!in) return status_set(err, ST_IO, "cannot read vocab %s: %s", from, strerror(errno));
  FILE *out = fopen(path, "wb");
  if (!out) {
    int e = errno;
    fclose(in);
    return status_set(err, ST_IO, "cannot create %s: %s", path, strerror(e));
  }
  char buf[65536];
  size_t n;
  int ok = 1;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) ok &= fwrite(buf, 1, n, out) == n;
  ok &= !ferror(in);
  fclose(in);
  ok &= fflush(out) == 0 && fsync(fileno(out)) == 0;
  ok &= fclose(out) == 0;
  if (!ok) return status_set(err, ST_IO, "cannot copy vocab %s to %s", from, path);
  return ST_OK;
}

/* Copies the vocab into dir and checks the copy is the vocab that was
 * loaded (want_hex). */
int shard_out_copy_vocab(const char *from, const char *dir, const char *want_hex, char **err) {
  char *path = file_path_join(dir, MANIFEST_VOCAB_FILE);
  if (!path) return status_set(err, ST_NOMEM, "out of memory copying vocab %s", from);
  uint8_t digest[32];
  char hex[65];
  int rc = copy_file(from, path, err);
  if (!rc) rc = sha256_file(path, digest, err);
  if (!rc) {
    sha256_hex(digest, hex);
    if (strcmp(hex, want_hex) != 0)
      rc = status_set(err, ST_IO, "vocab %s changed while it was copied to %s", from, path);
  }
  free(path);
  return rc;
}

/* ---------------------------------------------------------------- shards */


static int shard_set_flush(shard_set *s, out_shard *o, char **err) {
  if (o->batch_bytes == 0) return ST_OK;
  char *lerr = NULL;
  leveldb_write(o->db, s->write, o->batch, &lerr);
  leveldb_writebatch_clear(o->batch);
  o->batch_bytes = 0;
  if (lerr) {
    int rc = status_set(err, ST_IO, "cannot write shard %s: %s", o->info.name, lerr);
    leveldb_free(lerr);
    return rc;
  }
  return ST_OK;
}

/* Shards are created when their first sequence arrives, so that asking for
 * more shards than there are sequences creates no empty databases. */
int shard_set_open(shard_set *s, const char *dir, const char *prefix, size_t n,
                          int id_bytes, size_t seq_len, char **err) {
  s->n = n;
  s->id_bytes = id_bytes;
  s->dir = dir;
  s->shards = calloc(n, sizeof *s->shards);
  /* Room for the largest record: seq_len ids and a tag per id. */
  s->buf = malloc(record_encoded_size(seq_len, id_bytes) +
                  record_labels_size(RECORD_TAGS, seq_len));
  s->options = leveldb_options_create();
  s->write = leveldb_writeoptions_create();
  if (!s->shards || !s->buf) return status_set(err, ST_NOMEM, "out of memory opening shards");
  leveldb_options_set_create_if_missing(s->options, 1);
  leveldb_options_set_error_if_exists(s->options, 1);
  leveldb_options_set_write_buffer_size(s->options, WRITE_BUFFER_BYTES);
  leveldb_options_set_max_file_size(s->options, MAX_FILE_BYTES);
  for (size_t i = 0; i < n; i++)
    snprintf(s->shards[i].info.name, sizeof s->shards[i].info.name, "%s-%05zu", prefix, i);
  return ST_OK;
}

static int shard_create(shard_set *s, out_shard *o, char **err) {
  char *path = file_path_join(s->dir, o->info.name), *lerr = NULL;
  if (!path) return status_set(err, ST_NOMEM, "out of memory creating shard %s", o->info.name);
  int rc = ST_OK;
  o->db = leveldb_open(s->options, path, &lerr);
  if (lerr) {
    rc = status_set(err, ST_IO, "cannot create shard %s: %s", path, lerr);
    leveldb_free(lerr);
  } else {
    o->batch = leveldb_writebatch_create();
  }
  free(path);
  return rc;
}

int shard_set_emit(void *ctx, const record *rec, char **err) {
  shard_set *s = ctx;
  out_shard *o = &s->shards[s->next % s->n];
  if (!o->db) {
    int rc = shard_create(s, o, err);
    if (rc) return rc;
  }
  uint8_t key[8];
  shard_key_encode(o->info.sequences, key);
  size_t len = record_encoded_size(rec->n, s->id_bytes) + record_labels_size(rec->kind, rec->n);
  record_encode(rec, s->id_bytes, s->buf);
  leveldb_writebatch_put(o->batch, (const char *)key, sizeof key, (const char *)s->buf, len);
  o->batch_bytes += len + sizeof key;
  o->info.sequences++;
  o->info.tokens += rec->n;
  for (size_t i = 0; i < rec->n; i++)
    if ((uint32_t)rec->ids[i] > o->info.max_id) o->info.max_id = (uint32_t)rec->ids[i];
  s->next++;
  if (s->valid) {
    s->progress->valid_sequences++;
  } else {
    s->progress->sequences++;
    s->progress->tokens += rec->n;
  }
  return o->batch_bytes >= BATCH_FLUSH_BYTES ? shard_set_flush(s, o, err) : ST_OK;
}

/* Lists the tables of shard o, closed, into its info for the manifest. */
static int shard_describe(const shard_set *s, out_shard *o, char **err) {
  char *path = file_path_join(s->dir, o->info.name);
  if (!path) return status_set(err, ST_NOMEM, "out of memory describing shard %s", o->info.name);
  int rc = shard_files_describe(path, &o->info, err);
  free(path);
  return rc;
}

/* With finish, flushes and compacts (so the data sit in sorted tables, not
 * in a log that the first reader would have to replay), closes every
 * shard and lists its tables: from then on nothing writes to it and
 * readers read the tables alone. Closing again, or a set never opened,
 * does nothing. The shards' infos stay for the manifest. */
int shard_set_close(shard_set *s, int finish, char **err) {
  int rc = ST_OK;
  for (size_t i = 0; s->shards && i < s->n; i++) {
    out_shard *o = &s->shards[i];
    int opened = o->db != NULL;
    if (o->db && finish && !rc) {
      rc = shard_set_flush(s, o, err);
      if (!rc) leveldb_compact_range(o->db, NULL, 0, NULL, 0);
    }
    if (o->db) leveldb_close(o->db);
    if (o->batch) leveldb_writebatch_destroy(o->batch);
    o->db = NULL;
    o->batch = NULL;
    if (opened && finish && !rc) rc = shard_describe(s, o, err);
  }
  if (s->options) leveldb_options_destroy(s->options);
  if (s->write) leveldb_writeoptions_destroy(s->write);
  free(s->buf);
  s->options = NULL;
  s->write = NULL;
  s->buf = NULL;
  return rc;
}

void shard_set_free(shard_set *s) {
  for (size_t i = 0; s->shards && i < s->n; i++) manifest_shards_free_files(&s->shards[i].info, 1);
  free(s->shards);
  s->shards = NULL;
}

int shard_out_load_vocab(const char *path, tok_vocab **vocab, manifest *m, char **err) {
  int rc = tok_vocab_load(path, vocab, err);
  if (rc) return rc;
  if ((rc = tok_vocab_special(*vocab, path, "[CLS]", &m->cls_id, err)) ||
      (rc = tok_vocab_special(*vocab, path, "[SEP]", &m->sep_id, err)) ||
      (rc = tok_vocab_special(*vocab, path, "[MASK]", &m->mask_id, err)) ||
      (rc = tok_vocab_special(*vocab, path, "[PAD]", &m->pad_id, err)) ||
      (rc = tok_vocab_special(*vocab, path, "[UNK]", &m->unk_id, err)))
    return rc;
  m->id_bytes = tok_vocab_size(*vocab) <= 65536 ? 2 : 4;
  return ST_OK;
}

void shard_out_utc_now(char *buf, size_t size) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Fills m's fields from the run and writes dir/manifest.json, the last
 * step: from then on the corpus is complete. */
int shard_out_write_manifest(manifest *m, const shard_options *opt, const char *input_format,
                             const tok_vocab *vocab, const shard_progress *p,
                             const shard_set *train, const shard_set *valid, char **err) {
  snprintf(m->tool, sizeof m->tool, "%s", opt->tool ? opt->tool : "ddpt");
  shard_out_utc_now(m->created, sizeof m->created);
  m->task = opt->task;
  m->seq_len = opt->seq_len;
  m->nsp = opt->nsp;
  m->lowercase = opt->lowercase;
  snprintf(m->input_format, sizeof m->input_format, "%s", input_format);
  m->seed = opt->seed;
  m->valid_fraction = opt->valid_fraction;
  m->vocab_size = (int64_t)tok_vocab_size(vocab);
  snprintf(m->vocab_sha256, sizeof m->vocab_sha256, "%s", tok_vocab_sha256_hex(vocab));
  m->documents = p->documents + p->valid_documents;
  m->sequences = p->sequences + p->valid_sequences;
  m->tokens = p->tokens;
  m->unk_tokens = p->unk;
  m->bytes_in = p->bytes_read;
  m->invalid_utf8_bytes = p->invalid_utf8_bytes;
  m->num_shards = train->n;
  m->shards = calloc(m->num_shards, sizeof *m->shards);
  m->num_valid = valid->shards && valid->shards[0].info.sequences > 0 ? valid->n : 0;
  m->valid = calloc(m->num_valid ? m->num_valid : 1, sizeof *m->valid);
  if (!m->shards || !m->valid)
    return status_set(err, ST_NOMEM, "out of memory writing the manifest");
  for (size_t i = 0; i < m->num_shards; i++) m->shards[i] = train->shards[i].info;
  for (size_t i = 0; i < m->num_valid; i++) {
    m->valid[i] = valid->shards[i].info;
    m->tokens += m->valid[i].tokens;
  }
  return manifest_write(opt->out_dir, m, err);
}

int shard_out_to_valid(double valid_fraction, uint64_t seed, uint64_t index) {
  if (!(valid_fraction > 0)) return 0;
  rng_stream s;
  rng_stream_init(&s, rng_mix64(seed ^ SHARD_VALID_SEED_TAG), (uint32_t)index, (uint32_t)(index >> 32), 0);
  return rng_next_uniform_double(&s) < valid_fraction;
}
