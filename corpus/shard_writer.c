/* The sharding pipeline (see shard_writer.h). The calling thread reads input
 * and cuts it into chunks at document boundaries; worker threads tokenize
 * chunks; the calling thread takes finished chunks strictly in input order,
 * packs them and writes the shards, so the output does not depend on how
 * many workers there are or how they are scheduled. */
#include "corpus/shard_writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <leveldb/c.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "corpus/inputs.h"
#include "corpus/manifest.h"
#include "corpus/packing.h"
#include "corpus/record.h"
#include "corpus/shard_reader.h"
#include "corpus/tokenizer.h"
#include "corpus/vocab.h"
#include "util/array.h"
#include "util/file.h"
#include "util/rng.h"
#include "util/sha256.h"
#include "util/status.h"
#include "util/timer.h"

#define READ_BYTES (1u << 20)          /* one read() from an input file */
#define STOP_POLL_MS 100               /* longest wait for input before looking for a stop */
#define BATCH_FLUSH_BYTES (1u << 20)   /* LevelDB write batch size per shard */
#define WRITE_BUFFER_BYTES (8u << 20)  /* LevelDB memtable per shard */
#define NSP_WINDOW_DOCS 100
#define NSP_SHORT_SEQ_PROB 0.1
#define VALID_SEED_TAG 0x76616c6964617431ull /* "validat1" */

int shard_format_parse(const char *name) {
  if (strcmp(name, "lines") == 0) return SHARD_FORMAT_LINES;
  if (strcmp(name, "docs") == 0) return SHARD_FORMAT_DOCS;
  if (strcmp(name, "fortune") == 0) return SHARD_FORMAT_FORTUNE;
  return -1;
}

const char *shard_format_name(shard_format f) {
  switch (f) {
  case SHARD_FORMAT_LINES: return "lines";
  case SHARD_FORMAT_DOCS: return "docs";
  case SHARD_FORMAT_FORTUNE: return "fortune";
  }
  return "?";
}

void shard_options_default(shard_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->num_shards = 1;
  opt->seq_len = 128;
  opt->format = SHARD_FORMAT_LINES;
  opt->lowercase = 1;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  opt->threads = cpus > 0 ? (int)cpus : 1;
  opt->tool = "ddpt";
  opt->chunk_bytes = 1u << 20;
}

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
static int remove_corpus(const char *dir, char **err) {
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
static int prepare_out_dir(const char *dir, int overwrite, int *created, char **err) {
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
  return rc ? rc : remove_corpus(dir, err);
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
static int copy_vocab(const char *from, const char *dir, const char *want_hex, char **err) {
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

typedef struct out_shard {
  manifest_shard info;
  leveldb_t *db;
  leveldb_writebatch_t *batch;
  size_t batch_bytes;
} out_shard;

typedef struct shard_set {
  const char *dir;
  out_shard *shards;
  size_t n;
  uint64_t next; /* sequences routed so far; sequence j goes to shard j % n */
  int id_bytes;
  uint8_t *buf;
  leveldb_options_t *options;
  leveldb_writeoptions_t *write;
  shard_progress *progress;
  int valid;
} shard_set;

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
static int shard_set_open(shard_set *s, const char *dir, const char *prefix, size_t n,
                          int id_bytes, size_t seq_len, char **err) {
  s->n = n;
  s->id_bytes = id_bytes;
  s->dir = dir;
  s->shards = calloc(n, sizeof *s->shards);
  s->buf = malloc(record_encoded_size(seq_len, id_bytes));
  s->options = leveldb_options_create();
  s->write = leveldb_writeoptions_create();
  if (!s->shards || !s->buf) return status_set(err, ST_NOMEM, "out of memory opening shards");
  leveldb_options_set_create_if_missing(s->options, 1);
  leveldb_options_set_error_if_exists(s->options, 1);
  leveldb_options_set_write_buffer_size(s->options, WRITE_BUFFER_BYTES);
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

static int shard_set_emit(void *ctx, const record *rec, char **err) {
  shard_set *s = ctx;
  out_shard *o = &s->shards[s->next % s->n];
  if (!o->db) {
    int rc = shard_create(s, o, err);
    if (rc) return rc;
  }
  uint8_t key[8];
  shard_key_encode(o->info.sequences, key);
  size_t len = record_encoded_size(rec->n, s->id_bytes);
  record_encode(rec, s->id_bytes, s->buf);
  leveldb_writebatch_put(o->batch, (const char *)key, sizeof key, (const char *)s->buf, len);
  o->batch_bytes += len + sizeof key;
  o->info.sequences++;
  o->info.tokens += rec->n;
  s->next++;
  if (s->valid) {
    s->progress->valid_sequences++;
  } else {
    s->progress->sequences++;
    s->progress->tokens += rec->n;
  }
  return o->batch_bytes >= BATCH_FLUSH_BYTES ? shard_set_flush(s, o, err) : ST_OK;
}

/* With finish, flushes and compacts (so the data sit in sorted tables, not
 * in a log that the first reader would have to replay); closes every shard.
 * Closing again, or a set never opened, does nothing. The shards' infos
 * stay for the manifest. */
static int shard_set_close(shard_set *s, int finish, char **err) {
  int rc = ST_OK;
  for (size_t i = 0; s->shards && i < s->n; i++) {
    out_shard *o = &s->shards[i];
    if (o->db && finish && !rc) {
      rc = shard_set_flush(s, o, err);
      if (!rc) leveldb_compact_range(o->db, NULL, 0, NULL, 0);
    }
    if (o->db) leveldb_close(o->db);
    if (o->batch) leveldb_writebatch_destroy(o->batch);
    o->db = NULL;
    o->batch = NULL;
  }
  if (s->options) leveldb_options_destroy(s->options);
  if (s->write) leveldb_writeoptions_destroy(s->write);
  free(s->buf);
  s->options = NULL;
  s->write = NULL;
  s->buf = NULL;
  return rc;
}

/* ------------------------------------------------------------- chunks */

enum { CHUNK_EMPTY, CHUNK_QUEUED, CHUNK_RUNNING, CHUNK_DONE };

typedef struct chunk {
  int state;
  uint64_t seq;
  char *data;
  size_t len, cap;
  /* Worker output: documents of sentences of ids. Sentence ends are
   * relative to their document's first id. */
  tok_ids ids;
  size_t *sent_end, nsent, sent_cap;
  size_t *doc_tok_start, *doc_sent_end, ndoc, doc_cap; /* doc_sent_end: cumulative */
  tok_stats stats;
  int rc;
  char *err;
} chunk;

typedef struct pipeline {
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  chunk *slots;
  size_t nslots;
  int quit;
  shard_format format;
} pipeline;

static int chunk_push_sentence(chunk *c, size_t doc_start, char **err) {
  if (array_grow(&c->sent_end, &c->sent_cap, c->nsent + 1, sizeof *c->sent_end) != ST_OK)
    return status_set(err, ST_NOMEM, "out of memory tokenizing");
  c->sent_end[c->nsent++] = c->ids.len - doc_start;
  return ST_OK;
}

static int chunk_push_doc(chunk *c, size_t doc_start, char **err) {
  /* Two arrays of one capacity: each grows from the same old doc_cap. */
  size_t cap = c->doc_cap;
  if (array_grow(&c->doc_tok_start, &cap, c->ndoc + 1, sizeof *c->doc_tok_start) != ST_OK)
    return status_set(err, ST_NOMEM, "out of memory tokenizing");
  cap = c->doc_cap;
  if (array_grow(&c->doc_sent_end, &cap, c->ndoc + 1, sizeof *c->doc_sent_end) != ST_OK)
    return status_set(err, ST_NOMEM, "out of memory tokenizing");
  c->doc_cap = cap;
  c->doc_tok_start[c->ndoc] = doc_start;
  c->doc_sent_end[c->ndoc] = c->nsent;
  c->ndoc++;
  return ST_OK;
}

static int is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v') return 0;
  return 1;
}

static int is_doc_boundary(shard_format f, const char *line, size_t n) {
  switch (f) {
  case SHARD_FORMAT_LINES: return 1;
  case SHARD_FORMAT_DOCS: return is_blank(line, n);
  case SHARD_FORMAT_FORTUNE: return (n == 1 && line[0] == '%') || (n == 2 && line[0] == '%' && line[1] == '\r');
  }
  return 0;
}

/* Splits the chunk into documents and sentences and tokenizes each line. */
static int chunk_tokenize(chunk *c, tokenizer *t, shard_format f, char **err) {
  c->ids.len = 0;
  c->nsent = c->ndoc = 0;
  memset(&c->stats, 0, sizeof c->stats);
  size_t doc_start = 0, doc_first_sent = 0;
  int rc = ST_OK;
  for (size_t pos = 0; pos < c->len && !rc;) {
    const char *line = c->data + pos;
    const char *nl = memchr(line, '\n', c->len - pos);
    size_t n = nl ? (size_t)(nl - line) : c->len - pos;
    pos += n + (nl ? 1 : 0);
    int boundary_line = f != SHARD_FORMAT_LINES && is_doc_boundary(f, line, n);
    if (!boundary_line) {
      size_t before = c->ids.len;
      if ((rc = tok_encode(t, line, n, &c->ids, &c->stats, err))) break;
      if (c->ids.len > before && (rc = chunk_push_sentence(c, doc_start, err))) break;
    }
    if (is_doc_boundary(f, line, n)) {
      if (c->nsent > doc_first_sent && (rc = chunk_push_doc(c, doc_start, err))) break;
      doc_start = c->ids.len;
      doc_first_sent = c->nsent;
    }
  }
  if (!rc && c->nsent > doc_first_sent) rc = chunk_push_doc(c, doc_start, err);
  return rc;
}

typedef struct worker_arg {
  pipeline *p;
  tokenizer *tok;
} worker_arg;

static void *worker_main(void *arg) {
  worker_arg *w = arg;
  pipeline *p = w->p;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    chunk *next = NULL;
    for (size_t i = 0; i < p->nslots; i++)
      if (p->slots[i].state == CHUNK_QUEUED && (!next || p->slots[i].seq < next->seq))
        next = &p->slots[i];
    if (!next) {
      if (p->quit) break;
      pthread_cond_wait(&p->work, &p->mu);
      continue;
    }
    next->state = CHUNK_RUNNING;
    pthread_mutex_unlock(&p->mu);
    next->rc = chunk_tokenize(next, w->tok, p->format, &next->err);
    pthread_mutex_lock(&p->mu);
    next->state = CHUNK_DONE;
    pthread_cond_broadcast(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* -------------------------------------------------------------- the run */

typedef struct run {
  const shard_options *opt;
  shard_progress prog;
  double t0, last_report;
  packer *train_packer, *valid_packer;
  shard_set train, valid;
  uint64_t doc_index;
} run;

static int consume_chunk(run *r, chunk *c, char **err) {
  if (c->rc) {
    *err = c->err;
    c->err = NULL;
    return c->rc;
  }
  r->prog.text_tokens += c->stats.tokens;
  r->prog.unk += c->stats.unk;
  r->prog.invalid_utf8_bytes += c->stats.invalid_utf8_bytes;
  for (size_t d = 0; d < c->ndoc; d++) {
    size_t first = d ? c->doc_sent_end[d - 1] : 0;
    size_t nsent = c->doc_sent_end[d] - first;
    int to_valid = 0;
    if (r->opt->valid_fraction > 0) {
      rng_stream s;
      rng_stream_init(&s, rng_mix64(r->opt->seed ^ VALID_SEED_TAG), (uint32_t)r->doc_index,
                      (uint32_t)(r->doc_index >> 32), 0);
      to_valid = rng_next_uniform_double(&s) < r->opt->valid_fraction;
    }
    r->doc_index++;
    packer *p = to_valid ? r->valid_packer : r->train_packer;
    int rc = packer_add_document(p, c->ids.ids + c->doc_tok_start[d], c->sent_end + first, nsent,
                                 err);
    if (rc) return rc;
  }
  r->prog.documents = packer_documents(r->train_packer);
  r->prog.valid_documents = r->valid_packer ? packer_documents(r->valid_packer) : 0;
  return ST_OK;
}

static void report(run *r, int force) {
  double now = timer_now();
  if (!r->opt->progress || (!force && now - r->last_report < 1.0)) return;
  r->last_report = now;
  r->prog.seconds = now - r->t0;
  r->opt->progress(r->opt->progress_ctx, &r->prog);
}

/* Waits for the chunk in slot, packs and writes it, frees the slot. */
static int drain_slot(run *r, pipeline *p, chunk *c, char **err) {
  pthread_mutex_lock(&p->mu);
  while (c->state != CHUNK_DONE) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
  int rc = consume_chunk(r, c, err);
  pthread_mutex_lock(&p->mu);
  c->state = CHUNK_EMPTY;
  pthread_mutex_unlock(&p->mu);
  report(r, 0);
  return rc;
}

static int slot_state(pipeline *p, const chunk *c) {
  pthread_mutex_lock(&p->mu);
  int state = c->state;
  pthread_mutex_unlock(&p->mu);
  return state;
}

/* Where the input in buf[0..len) can be cut so that the first part holds
 * whole documents and at least min bytes: the end of the first boundary
 * line that ends at or after min; 0 if there is none yet. */
static size_t next_cut(shard_format f, const char *buf, size_t len, size_t min) {
  for (size_t pos = 0; pos < len;) {
    const char *nl = memchr(buf + pos, '\n', len - pos);
    if (!nl) return 0;
    size_t end = (size_t)(nl - buf) + 1;
    if (end >= min && is_doc_boundary(f, buf + pos, end - 1 - pos)) return end;
    pos = end;
  }
  return 0;
}

typedef struct feeder {
  run *r;
  pipeline *p;
  uint64_t seq;
  char *pending;
  size_t pending_len, pending_cap;
} feeder;

/* Hands pending[0..cut) to the next slot (draining the chunk it held). */
static int feed(feeder *f, size_t cut, char **err) {
  if (cut == 0) return ST_OK;
  chunk *c = &f->p->slots[f->seq % f->p->nslots];
  if (slot_state(f->p, c) != CHUNK_EMPTY) {
    int rc = drain_slot(f->r, f->p, c, err);
    if (rc) return rc;
  }
  if (c->cap < cut) {
    char *nd = realloc(c->data, cut);
    if (!nd) return status_set(err, ST_NOMEM, "out of memory reading input");
    c->data = nd;
    c->cap = cut;
  }
  memcpy(c->data, f->pending, cut);
  c->len = cut;
  memmove(f->pending, f->pending + cut, f->pending_len - cut);
  f->pending_len -= cut;
  pthread_mutex_lock(&f->p->mu);
  c->seq = f->seq++;
  c->state = CHUNK_QUEUED;
  pthread_cond_signal(&f->p->work);
  pthread_mutex_unlock(&f->p->mu);
  return ST_OK;
}

static int stopped(const shard_options *opt) { return opt->stop && *opt->stop; }

/* Reads up to n bytes of fd into buf; *got is 0 at the end of input. Waits
 * for input at most STOP_POLL_MS at a time: a Ctrl-C taken by another
 * thread, or one that came just before a read, interrupts no read, and a
 * pipe that stays open must not hide it. */
static int read_input(int fd, const char *name, const shard_options *opt, char *buf, size_t n,
                      size_t *got, char **err) {
  for (;;) {
    if (stopped(opt)) return ST_INTERRUPTED;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int ready = poll(&pfd, 1, STOP_POLL_MS);
    if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
    ssize_t k = ready < 0 ? -1 : read(fd, buf, n);
    if (k >= 0) {
      *got = (size_t)k;
      return ST_OK;
    }
    if (errno != EINTR && errno != EAGAIN)
      return status_set(err, ST_IO, "cannot read %s: %s", name, strerror(errno));
  }
}

static int feed_file(feeder *f, const char *path, char **err) {
  const shard_options *opt = f->r->opt;
  int is_stdin = strcmp(path, "-") == 0;
  int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY);
  if (fd < 0)
    return stopped(opt) ? ST_INTERRUPTED
                        : status_set(err, ST_IO, "cannot open input %s: %s", path, strerror(errno));
  const char *name = is_stdin ? "standard input" : path;
  int rc = ST_OK;
  for (;;) {
    if (f->pending_cap - f->pending_len < READ_BYTES) {
      size_t cap = f->pending_cap ? f->pending_cap * 2 : 2 * READ_BYTES;
      char *np = realloc(f->pending, cap);
      if (!np) {
        rc = status_set(err, ST_NOMEM, "out of memory reading %s", name);
        break;
      }
      f->pending = np;
      f->pending_cap = cap;
    }
    size_t got = 0;
    rc = read_input(fd, name, opt, f->pending + f->pending_len, READ_BYTES, &got, err);
    if (rc || got == 0) break;
    f->pending_len += got;
    f->r->prog.bytes_read += got;
    size_t cut;
    while (!rc && f->pending_len >= opt->chunk_bytes &&
           (cut = next_cut(opt->format, f->pending, f->pending_len, opt->chunk_bytes)) > 0)
      rc = feed(f, cut, err);
    if (rc) break;
  }
  if (!is_stdin) close(fd);
  /* The end of a file ends its last document. */
  if (!rc && f->pending_len > 0) rc = feed(f, f->pending_len, err);
  return rc;
}

static void utc_now(char *buf, size_t size) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Everything one shard_writer_run holds, so that each step is a function
 * and one cleanup (job_free) releases what the steps acquired. */
typedef struct job {
  run r;
  pipeline p;
  feeder f;
  corpus_inputs inputs;
  tok_vocab *vocab;
  manifest m; /* special ids and id width from the vocab; the rest at the end */
  worker_arg *workers; /* (opt->threads) */
  pthread_t *threads;  /* (nthreads) started */
  int nthreads;
  int pipeline_init; /* p's mutex and conditions exist */
  int out_created;   /* out_dir did not exist before */
  int out_touched;   /* out_dir was emptied or created: a failure takes it back */
} job;

static int check_options(const shard_options *opt, char **err) {
  if (opt->seq_len < SHARD_MIN_SEQ_LEN || opt->seq_len > SHARD_MAX_SEQ_LEN)
    return status_set(err, ST_INVALID, "--seq-len %zu is out of range: use %d to %d (BERT's "
                      "position limit)", opt->seq_len, SHARD_MIN_SEQ_LEN, SHARD_MAX_SEQ_LEN);
  if (opt->num_shards < 1 || opt->num_shards > SHARD_MAX_SHARDS)
    return status_set(err, ST_INVALID, "--shards %zu is out of range: use 1 to %d", opt->num_shards,
                      SHARD_MAX_SHARDS);
  if (!(opt->valid_fraction >= 0 && opt->valid_fraction < 1))
    return status_set(err, ST_INVALID, "--valid-fraction %g is out of range: use 0 to below 1",
                      opt->valid_fraction);
  if (opt->threads < 1 || opt->threads > SHARD_MAX_THREADS)
    return status_set(err, ST_INVALID, "--threads %d is out of range: use 1 to %d", opt->threads,
                      SHARD_MAX_THREADS);
  if (opt->chunk_bytes == 0) return status_set(err, ST_INVALID, "chunk size must be positive");
  size_t tool_max = sizeof ((manifest *)NULL)->tool - 1;
  if (opt->tool && strlen(opt->tool) > tool_max)
    return status_set(err, ST_INVALID, "tool name \"%.32s...\" is longer than the manifest's %zu "
                      "bytes: shorten it", opt->tool, tool_max);
  if (opt->num_inputs == 0)
    return status_set(err, ST_INVALID, "no input given: name files, directories or - for standard "
                      "input");
  return ST_OK;
}

/* The files to read, before anything is created (corpus/inputs.h). */
static int list_inputs(job *j, char **err) {
  const shard_options *opt = j->r.opt;
  int rc = corpus_inputs_list(&j->inputs, opt->inputs, opt->num_inputs, 1, opt->out_dir, err);
  j->r.prog.bytes_total = j->inputs.total_bytes;
  return rc;
}

/* Loads the vocab and takes from it what the manifest records: the special
 * ids and the width of an id. */
static int load_vocab(job *j, char **err) {
  const char *path = j->r.opt->vocab_path;
  manifest *m = &j->m;
  int rc = tok_vocab_load(path, &j->vocab, err);
  if (rc) return rc;
  if ((rc = tok_vocab_special(j->vocab, path, "[CLS]", &m->cls_id, err)) ||
      (rc = tok_vocab_special(j->vocab, path, "[SEP]", &m->sep_id, err)) ||
      (rc = tok_vocab_special(j->vocab, path, "[MASK]", &m->mask_id, err)) ||
      (rc = tok_vocab_special(j->vocab, path, "[PAD]", &m->pad_id, err)) ||
      (rc = tok_vocab_special(j->vocab, path, "[UNK]", &m->unk_id, err)))
    return rc;
  m->id_bytes = tok_vocab_size(j->vocab) <= 65536 ? 2 : 4;
  return ST_OK;
}

/* Empties (or creates) out_dir, copies the vocab into it, and opens the
 * training shards and packer, and the validation ones if asked for. */
static int open_outputs(job *j, char **err) {
  const shard_options *opt = j->r.opt;
  run *r = &j->r;
  int rc = prepare_out_dir(opt->out_dir, opt->overwrite, &j->out_created, err);
  if (rc) return rc;
  j->out_touched = 1;
  if ((rc = copy_vocab(opt->vocab_path, opt->out_dir, tok_vocab_sha256_hex(j->vocab), err)))
    return rc;
  r->train.progress = r->valid.progress = &r->prog;
  r->valid.valid = 1;
  pack_config pc = {
      .seq_len = opt->seq_len,
      .nsp = opt->nsp,
      .seed = opt->seed,
      .short_seq_prob = NSP_SHORT_SEQ_PROB,
      .window_docs = NSP_WINDOW_DOCS,
      .cls_id = j->m.cls_id,
      .sep_id = j->m.sep_id,
  };
  rc = shard_set_open(&r->train, opt->out_dir, "shard", opt->num_shards, j->m.id_bytes,
                      opt->seq_len, err);
  if (!rc) rc = packer_create(&pc, shard_set_emit, &r->train, &r->train_packer, err);
  if (rc || opt->valid_fraction <= 0) return rc;
  pc.seed = rng_mix64(opt->seed ^ VALID_SEED_TAG);
  rc = shard_set_open(&r->valid, opt->out_dir, "valid", 1, j->m.id_bytes, opt->seq_len, err);
  if (!rc) rc = packer_create(&pc, shard_set_emit, &r->valid, &r->valid_packer, err);
  return rc;
}

/* Starts opt->threads tokenizer workers, each with its own tokenizer. */
static int start_workers(job *j, char **err) {
  const shard_options *opt = j->r.opt;
  pipeline *p = &j->p;
  p->format = opt->format;
  p->nslots = 2 * (size_t)opt->threads + 2;
  p->slots = calloc(p->nslots, sizeof *p->slots);
  j->workers = calloc((size_t)opt->threads, sizeof *j->workers);
  j->threads = calloc((size_t)opt->threads, sizeof *j->threads);
  if (!p->slots || !j->workers || !j->threads)
    return status_set(err, ST_NOMEM, "out of memory starting %d tokenizer threads", opt->threads);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
  j->pipeline_init = 1;
  for (int i = 0; i < opt->threads; i++) {
    j->workers[i].p = p;
    int rc = tok_create(j->vocab, opt->lowercase, &j->workers[i].tok, err);
    if (rc) return rc;
    if (pthread_create(&j->threads[i], NULL, worker_main, &j->workers[i]) != 0)
      return status_set(err, ST_NOMEM, "cannot start tokenizer thread %d", i);
    j->nthreads++;
  }
  return ST_OK;
}

/* Waits for the chunks still in flight, oldest first. After a failure (rc)
 * they are only let finish, not packed. */
static int drain_in_flight(job *j, int rc, char **err) {
  pipeline *p = &j->p;
  uint64_t end = j->f.seq;
  for (uint64_t s = end >= p->nslots ? end - p->nslots : 0; s < end; s++) {
    chunk *c = &p->slots[s % p->nslots];
    if (slot_state(p, c) == CHUNK_EMPTY) continue;
    if (rc) {
      pthread_mutex_lock(&p->mu);
      while (c->state == CHUNK_RUNNING) pthread_cond_wait(&p->done, &p->mu);
      c->state = CHUNK_EMPTY;
      pthread_mutex_unlock(&p->mu);
      continue;
    }
    rc = drain_slot(&j->r, p, c, err);
  }
  return rc;
}

/* Reads every input through the workers into the packers, in input order. */
static int feed_inputs(job *j, char **err) {
  const shard_options *opt = j->r.opt;
  int rc = ST_OK;
  j->r.t0 = j->r.last_report = timer_now();
  for (size_t i = 0; i < j->inputs.n && !rc; i++) rc = feed_file(&j->f, j->inputs.paths[i], err);
  rc = drain_in_flight(j, rc, err);
  if (rc == ST_INTERRUPTED || (!rc && stopped(opt)))
    return status_set(err, ST_INTERRUPTED, "interrupted: %s is incomplete (no %s); rerun ddpt "
                      "shard with --overwrite", opt->out_dir, MANIFEST_FILE);
  return rc;
}

/* Packs what the packers still hold, refuses a corpus that is empty or has
 * fewer sequences than shards, and closes the shards, flushed and compacted. */
static int finish_shards(job *j, char **err) {
  run *r = &j->r;
  int rc = packer_finish(r->train_packer, err);
  if (!rc && r->valid_packer) rc = packer_finish(r->valid_packer, err);
  if (rc) return rc;
  r->prog.documents = packer_documents(r->train_packer);
  r->prog.valid_documents = r->valid_packer ? packer_documents(r->valid_packer) : 0;
  report(r, 1);
  if (r->prog.documents + r->prog.valid_documents == 0)
    return status_set(err, ST_INVALID, "no documents in the input (%llu bytes read, none gave a "
                      "token): check the inputs and --format",
                      (unsigned long long)r->prog.bytes_read);
  if (r->prog.sequences < r->opt->num_shards)
    return status_set(err, ST_INVALID, "%zu shards but only %llu training sequences: use --shards "
                      "%llu or fewer, or add text", r->opt->num_shards,
                      (unsigned long long)r->prog.sequences, (unsigned long long)r->prog.sequences);
  rc = shard_set_close(&r->train, 1, err);
  if (!rc && r->valid_packer) rc = shard_set_close(&r->valid, 1, err);
  return rc;
}

/* Writes manifest.json, the last step: from then on the corpus is complete. */
static int write_manifest(job *j, char **err) {
  const shard_options *opt = j->r.opt;
  const run *r = &j->r;
  manifest *m = &j->m;
  snprintf(m->tool, sizeof m->tool, "%s", opt->tool ? opt->tool : "ddpt");
  utc_now(m->created, sizeof m->created);
  m->seq_len = opt->seq_len;
  m->nsp = opt->nsp;
  m->lowercase = opt->lowercase;
  snprintf(m->input_format, sizeof m->input_format, "%s", shard_format_name(opt->format));
  m->seed = opt->seed;
  m->valid_fraction = opt->valid_fraction;
  m->vocab_size = (int64_t)tok_vocab_size(j->vocab);
  snprintf(m->vocab_sha256, sizeof m->vocab_sha256, "%s", tok_vocab_sha256_hex(j->vocab));
  m->documents = r->prog.documents + r->prog.valid_documents;
  m->sequences = r->prog.sequences + r->prog.valid_sequences;
  m->tokens = r->prog.tokens;
  m->unk_tokens = r->prog.unk;
  m->bytes_in = r->prog.bytes_read;
  m->invalid_utf8_bytes = r->prog.invalid_utf8_bytes;
  m->num_shards = r->train.n;
  m->shards = calloc(m->num_shards, sizeof *m->shards);
  m->num_valid = r->valid.shards && r->valid.shards[0].info.sequences > 0 ? r->valid.n : 0;
  m->valid = calloc(m->num_valid ? m->num_valid : 1, sizeof *m->valid);
  if (!m->shards || !m->valid)
    return status_set(err, ST_NOMEM, "out of memory writing the manifest");
  for (size_t i = 0; i < m->num_shards; i++) m->shards[i] = r->train.shards[i].info;
  for (size_t i = 0; i < m->num_valid; i++) {
    m->valid[i] = r->valid.shards[i].info;
    m->tokens += m->valid[i].tokens;
  }
  return manifest_write(opt->out_dir, m, err);
}

/* Stops the workers (they finish the chunk in hand) and frees the slots. */
static void stop_workers(job *j) {
  pipeline *p = &j->p;
  if (j->pipeline_init) {
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
  }
  for (int i = 0; i < j->nthreads; i++) pthread_join(j->threads[i], NULL);
  for (int i = 0; j->workers && i < j->r.opt->threads; i++) tok_free(j->workers[i].tok);
  for (size_t i = 0; p->slots && i < p->nslots; i++) {
    free(p->slots[i].data);
    tok_ids_free(&p->slots[i].ids);
    free(p->slots[i].sent_end);
    free(p->slots[i].doc_tok_start);
    free(p->slots[i].doc_sent_end);
    free(p->slots[i].err);
  }
  if (j->pipeline_init) {
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
  }
  free(p->slots);
  free(j->workers);
  free(j->threads);
}

/* Releases everything the steps acquired. A failed run takes back what it
 * wrote, except when interrupted: then the directory stays, without a
 * manifest, and readers call it incomplete. */
static void job_free(job *j, int rc) {
  const shard_options *opt = j->r.opt;
  shard_set_close(&j->r.train, 0, NULL);
  shard_set_close(&j->r.valid, 0, NULL);
  if (rc && rc != ST_INTERRUPTED && j->out_touched) {
    char *ignored = NULL;
    remove_corpus(opt->out_dir, &ignored);
    free(ignored);
    if (j->out_created) rmdir(opt->out_dir);
  }
  stop_workers(j);
  free(j->f.pending);
  free(j->m.shards);
  free(j->m.valid);
  packer_free(j->r.train_packer);
  packer_free(j->r.valid_packer);
  free(j->r.train.shards);
  free(j->r.valid.shards);
  tok_vocab_free(j->vocab);
  corpus_inputs_free(&j->inputs);
}

int shard_writer_run(const shard_options *opt, shard_progress *summary, char **err) {
  int rc = check_options(opt, err);
  if (rc) return rc;
  job *j = calloc(1, sizeof *j);
  if (!j) return status_set(err, ST_NOMEM, "out of memory starting ddpt shard");
  j->r.opt = opt;
  j->f = (feeder){.r = &j->r, .p = &j->p};
  rc = list_inputs(j, err);
  if (!rc) rc = load_vocab(j, err);
  if (!rc) rc = open_outputs(j, err);
  if (!rc) rc = start_workers(j, err);
  if (!rc) rc = feed_inputs(j, err);
  if (!rc) rc = finish_shards(j, err);
  if (!rc) rc = write_manifest(j, err);
  if (!rc) {
    j->r.prog.seconds = timer_now() - j->r.t0;
    *summary = j->r.prog;
  }
  job_free(j, rc);
  free(j);
  return rc;
}
