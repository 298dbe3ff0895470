/* The sharding pipeline (see shard_writer.h). The calling thread reads input
 * and cuts it into chunks at document boundaries; worker threads tokenize
 * chunks; the calling thread takes finished chunks strictly in input order,
 * packs them and writes the shards, so the output does not depend on how
 * many workers there are or how they are scheduled. */
#include "corpus/shard_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corpus/inputs.h"
#include "corpus/labelled.h"
#include "corpus/manifest.h"
#include "corpus/packing.h"
#include "corpus/record.h"
#include "corpus/shard_out.h"
#include "corpus/tok_lines.h"
#include "corpus/tokenizer.h"
#include "corpus/vocab.h"
#include "util/array.h"
#include "util/rng.h"
#include "util/status.h"
#include "util/timer.h"

#define READ_BYTES (1u << 20)          /* one read() from an input file */
#define STOP_POLL_MS 100               /* longest wait for input before looking for a stop */
#define NSP_WINDOW_DOCS 100
#define NSP_SHORT_SEQ_PROB 0.1

int shard_format_parse(const char *name) {
  if (strcmp(name, "lines") == 0) return SHARD_FORMAT_LINES;
  if (strcmp(name, "docs") == 0) return SHARD_FORMAT_DOCS;
  if (strcmp(name, "fortune") == 0) return SHARD_FORMAT_FORTUNE;
  if (strcmp(name, "tsv") == 0) return SHARD_FORMAT_TSV;
  if (strcmp(name, "jsonl") == 0) return SHARD_FORMAT_JSONL;
  if (strcmp(name, "conll") == 0) return SHARD_FORMAT_CONLL;
  return -1;
}

const char *shard_format_name(shard_format f) {
  switch (f) {
  case SHARD_FORMAT_LINES: return "lines";
  case SHARD_FORMAT_DOCS: return "docs";
  case SHARD_FORMAT_FORTUNE: return "fortune";
  case SHARD_FORMAT_TSV: return "tsv";
  case SHARD_FORMAT_JSONL: return "jsonl";
  case SHARD_FORMAT_CONLL: return "conll";
  case SHARD_FORMAT_DETECT: return "detect";
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
  case SHARD_FORMAT_TSV:
  case SHARD_FORMAT_JSONL:
  case SHARD_FORMAT_CONLL:
  case SHARD_FORMAT_DETECT: break; /* labelled formats: check_options refuses them here */
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
  int reading_valid; /* the --valid inputs: every document goes to validation */
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
    int to_valid = r->reading_valid ||
                   shard_out_to_valid(r->opt->valid_fraction, r->opt->seed, r->doc_index);
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
  tok_line_check lines = {0, 0};
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
    if (rc || got == 0 ||
        (rc = tok_lines_check(&lines, name, f->pending + f->pending_len, got, err)))
      break;
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

/* Everything one shard_writer_run holds, so that each step is a function
 * and one cleanup (job_free) releases what the steps acquired. */
typedef struct job {
  run r;
  pipeline p;
  feeder f;
  corpus_inputs inputs, valid_inputs; /* valid_inputs: --valid */
  tok_vocab *vocab;
  manifest m; /* special ids and id width from the vocab; the rest at the end */
  worker_arg *workers; /* (opt->threads) */
  pthread_t *threads;  /* (nthreads) started */
  int nthreads;
  int pipeline_init; /* p's mutex and conditions exist */
  int out_created;   /* out_dir did not exist before */
  int out_touched;   /* out_dir was emptied or created: a failure takes it back */
} job;

/* A pretraining corpus takes none of the labelled corpora's options. */
static int check_pretrain_options(const shard_options *opt, char **err) {
  const char *stray = opt->format > SHARD_FORMAT_FORTUNE ? "--format tsv, jsonl or conll"
                      : opt->labels_path                 ? "--labels"
                      : opt->truncate                    ? "--truncate"
                      : opt->label_all_pieces            ? "--label-all-pieces"
                                                         : NULL;
  if (stray)
    return status_set(err, ST_INVALID, "%s is for labelled corpora: add --task classify or --task "
                      "tag", stray);
  return ST_OK;
}

/* A labelled corpus reads its task's formats, one example per sequence. */
static int check_labelled_options(const shard_options *opt, char **err) {
  int classify = opt->task == MANIFEST_TASK_CLASSIFY;
  if (opt->task != MANIFEST_TASK_CLASSIFY && opt->task != MANIFEST_TASK_TAG)
    return status_set(err, ST_INVALID, "task %d is not pretrain, classify or tag", (int)opt->task);
  if (classify ? opt->format != SHARD_FORMAT_TSV && opt->format != SHARD_FORMAT_JSONL &&
                     opt->format != SHARD_FORMAT_DETECT
               : opt->format != SHARD_FORMAT_CONLL)
    return status_set(err, ST_INVALID, "--task %s does not read --format %s: use %s",
                      manifest_task_name(opt->task), shard_format_name(opt->format),
                      classify ? "tsv or jsonl (or leave --format out to go by the file names)"
                               : "conll");
  if (opt->nsp)
    return status_set(err, ST_INVALID, "--nsp makes sentence pairs for pretraining; --task %s "
                      "keeps each example as it is", manifest_task_name(opt->task));
  if (opt->label_all_pieces && classify)
    return status_set(err, ST_INVALID, "--label-all-pieces is for --task tag");
  return ST_OK;
}

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
  if (opt->num_valid_inputs && opt->valid_fraction > 0)
    return status_set(err, ST_INVALID, "--valid FILE and --valid-fraction both choose the "
                      "validation %s: give one of them",
                      opt->task == MANIFEST_TASK_PRETRAIN ? "documents" : "examples");
  return opt->task == MANIFEST_TASK_PRETRAIN ? check_pretrain_options(opt, err)
                                             : check_labelled_options(opt, err);
}

/* The files to read, training then validation (--valid), before anything
 * is created (corpus/inputs.h). */
static int list_inputs(job *j, char **err) {
  const shard_options *opt = j->r.opt;
  int rc = corpus_inputs_list(&j->inputs, opt->inputs, opt->num_inputs, 1, opt->out_dir, err);
  if (!rc && opt->num_valid_inputs)
    rc = corpus_inputs_list(&j->valid_inputs, opt->valid_inputs, opt->num_valid_inputs, 1,
                            opt->out_dir, err);
  j->r.prog.bytes_total = j->inputs.total_bytes + j->valid_inputs.total_bytes;
  return rc;
}

/* Empties (or creates) out_dir, copies the vocab into it, and opens the
 * training shards and packer, and the validation ones if asked for. */
static int open_outputs(job *j, char **err) {
  const shard_options *opt = j->r.opt;
  run *r = &j->r;
  int rc = shard_out_prepare(opt->out_dir, opt->overwrite, &j->out_created, err);
  if (rc) return rc;
  j->out_touched = 1;
  if ((rc = shard_out_copy_vocab(opt->vocab_path, opt->out_dir, tok_vocab_sha256_hex(j->vocab),
                                 err)))
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
  if (rc || (opt->valid_fraction <= 0 && !opt->num_valid_inputs)) return rc;
  pc.seed = rng_mix64(opt->seed ^ SHARD_VALID_SEED_TAG);
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

/* Reads every input through the workers into the packers, in input order:
 * the training inputs, then the --valid ones. */
static int feed_inputs(job *j, char **err) {
  const shard_options *opt = j->r.opt;
  int rc = ST_OK;
  j->r.t0 = j->r.last_report = timer_now();
  for (size_t i = 0; i < j->inputs.n && !rc; i++) rc = feed_file(&j->f, j->inputs.paths[i], err);
  /* Every training chunk is packed before the first validation one. */
  rc = drain_in_flight(j, rc, err);
  j->r.reading_valid = 1;
  for (size_t i = 0; i < j->valid_inputs.n && !rc; i++)
    rc = feed_file(&j->f, j->valid_inputs.paths[i], err);
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
  if (r->opt->num_valid_inputs && r->prog.valid_documents == 0)
    return status_set(err, ST_INVALID, "no documents in the validation input (--valid %s): check "
                      "it and --format", r->opt->valid_inputs[0]);
  if (r->prog.sequences < r->opt->num_shards)
    return status_set(err, ST_INVALID, "%zu shards but only %llu training sequences: use --shards "
                      "%llu or fewer, or add text", r->opt->num_shards,
                      (unsigned long long)r->prog.sequences, (unsigned long long)r->prog.sequences);
  rc = shard_set_close(&r->train, 1, err);
  if (!rc && r->valid_packer) rc = shard_set_close(&r->valid, 1, err);
  return rc;
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
    shard_out_remove(opt->out_dir, &ignored);
    free(ignored);
    if (j->out_created) rmdir(opt->out_dir);
  }
  stop_workers(j);
  free(j->f.pending);
  free(j->m.shards);
  free(j->m.valid);
  packer_free(j->r.train_packer);
  packer_free(j->r.valid_packer);
  shard_set_free(&j->r.train);
  shard_set_free(&j->r.valid);
  tok_vocab_free(j->vocab);
  corpus_inputs_free(&j->inputs);
  corpus_inputs_free(&j->valid_inputs);
}

int shard_writer_run(const shard_options *opt, shard_progress *summary, char **err) {
  int rc = check_options(opt, err);
  if (rc) return rc;
  if (opt->task != MANIFEST_TASK_PRETRAIN) return labelled_shard_run(opt, summary, err);
  job *j = calloc(1, sizeof *j);
  if (!j) return status_set(err, ST_NOMEM, "out of memory starting ddpt shard");
  j->r.opt = opt;
  j->f = (feeder){.r = &j->r, .p = &j->p};
  rc = list_inputs(j, err);
  if (!rc) rc = shard_out_load_vocab(opt->vocab_path, &j->vocab, &j->m, err);
  if (!rc) rc = open_outputs(j, err);
  if (!rc) rc = start_workers(j, err);
  if (!rc) rc = feed_inputs(j, err);
  if (!rc) rc = finish_shards(j, err);
  if (!rc)
    rc = shard_out_write_manifest(&j->m, opt, shard_format_name(opt->format), j->vocab, &j->r.prog,
                                  &j->r.train, &j->r.valid, err);
  if (!rc) {
    j->r.prog.seconds = timer_now() - j->r.t0;
    *summary = j->r.prog;
  }
  job_free(j, rc);
  free(j);
  return rc;
}
