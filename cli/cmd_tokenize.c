/* `ddpt tokenize`: BERT WordPiece tokens (or ids) of a text, one output line
 * per input line, exactly as google-research/bert's FullTokenizer gives them.
 * The input is cut into chunks of whole lines; each of --threads workers
 * reads a chunk, tokenizes it into its own output buffer and writes that
 * buffer in its turn, so the output is in input order whatever the threads.
 * With --out the result goes through util/file.h's atomic writer. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "corpus/tok_lines.h"
#include "corpus/tokenizer.h"
#include "corpus/vocab.h"
#include "util/array.h"
#include "util/file.h"
#include "util/status.h"

/* Input bytes per chunk: a worker's two serial steps (taking the lines in,
 * writing the output) cost a few percent of the 20-40 ms it spends
 * tokenizing them, and threads x a few MiB of buffers stay small. */
#define TOKENIZE_CHUNK_BYTES ((size_t)1 << 20)
#define TOKENIZE_MAX_THREADS 256

/* What is written for an id (its token, or its decimal id with --ids), in a
 * 16-byte slot so that a short one is copied by one fixed-size memcpy: no
 * strlen, no printf per token. */
enum { SPELL_SLOT = 16, SPELL_LONG = 255 };
typedef struct spelling {
  char text[SPELL_SLOT - 1];
  uint8_t len; /* SPELL_LONG: a token of 16 bytes or more, spelled by the vocab */
} spelling;

typedef struct tokenize_job tokenize_job;

typedef struct tokenize_worker {
  tokenize_job *job;
  tokenizer *tok; /* a tokenizer is one thread's (tokenizer.h rule 1) */
  tok_ids ids;
  char *text; /* (text_cap) the chunk: whole input lines, each ending in '\n' */
  size_t text_len, text_cap;
  char *out; /* (out_cap) the chunk's output lines */
  size_t out_len, out_cap;
  pthread_t thread;
  char *err;
} tokenize_worker;

struct tokenize_job {
  const tok_vocab *v;
  spelling *spell; /* (vocab size) */
  file_atomic *file; /* --out, or NULL: standard output */

  pthread_mutex_t read_mu; /* guards lines, next_read and ended */
  tok_lines *lines;
  uint64_t next_read; /* sequence number of the next chunk read */
  int ended;          /* the input is exhausted or a chunk failed: read no more */

  pthread_mutex_t write_mu; /* guards next_write, rc and err */
  pthread_cond_t turn;
  uint64_t next_write; /* sequence number of the next chunk to write */
  int rc;              /* the first failure in input order (later chunks only take their turn) */
  char *err;           /* its message */
};

/* The decimal digits of id in text (NUL-terminated): snprintf would cost
 * more than the rest of the table. */
static void tokenize_decimal(char text[12], uint32_t id) {
  char rev[10];
  size_t n = 0;
  do rev[n++] = (char)('0' + id % 10); while ((id /= 10) > 0);
  for (size_t i = 0; i < n; i++) text[i] = rev[n - 1 - i];
  text[n] = '\0';
}

static int tokenize_spell(spelling **out, const tok_vocab *v, int as_ids, char **err) {
  size_t n = tok_vocab_size(v);
  spelling *s = calloc(n, sizeof *s);
  if (!s) return status_set(err, ST_NOMEM, "out of memory for %zu token spellings", n);
  for (size_t id = 0; id < n; id++) {
    char digits[12];
    if (as_ids) tokenize_decimal(digits, (uint32_t)id);
    const char *text = as_ids ? digits : tok_vocab_token(v, (int32_t)id);
    size_t len = strlen(text);
    s[id].len = len < SPELL_SLOT ? (uint8_t)len : SPELL_LONG;
    if (len < SPELL_SLOT) memcpy(s[id].text, text, len);
  }
  *out = s;
  return ST_OK;
}

/* Reads whole lines into the worker's chunk until it holds
 * TOKENIZE_CHUNK_BYTES or the input ends (text_len 0: nothing left). */
static int tokenize_read_chunk(tokenize_worker *w, char **err) {
  w->text_len = 0;
  while (w->text_len < TOKENIZE_CHUNK_BYTES) {
    const char *line;
    size_t len;
    int rc = tok_lines_next(w->job->lines, &line, &len, err);
    if (rc != ST_OK) return rc;
    if (!line) break;
    if (array_grow(&w->text, &w->text_cap, w->text_len + len + 1, 1) != ST_OK)
      return status_set(err, ST_NOMEM, "out of memory holding a %zu-byte line", len);
    memcpy(w->text + w->text_len, line, len);
    w->text_len += len;
    w->text[w->text_len++] = '\n';
  }
  return ST_OK;
}

/* Appends one output line: the ids' spellings, a space between two. Room
 * for a slot per id is made first; a long token makes room for itself. */
static int tokenize_format_line(tokenize_worker *w, const tok_ids *ids) {
  size_t n = ids->len;
  if (array_grow(&w->out, &w->out_cap, w->out_len + n * SPELL_SLOT + 1, 1) != ST_OK) return ST_NOMEM;
  const spelling *spell = w->job->spell; /* hoisted: the stores through p may alias w */
  const int32_t *id = ids->ids;
  char *p = w->out + w->out_len;
  for (size_t i = 0; i < n; i++) {
    const spelling *s = &spell[id[i]];
    if (s->len != SPELL_LONG) {
      memcpy(p, s, SPELL_SLOT);
      p += s->len;
    } else {
      const char *tok = tok_vocab_token(w->job->v, id[i]);
      size_t len = strlen(tok), at = (size_t)(p - w->out);
      if (array_grow(&w->out, &w->out_cap, at + len + (n - i) * SPELL_SLOT + 1, 1) != ST_OK)
        return ST_NOMEM;
      p = w->out + at;
      memcpy(p, tok, len);
      p += len;
    }
    *p++ = ' ';
  }
  if (n > 0) p--; /* the last space becomes the newline */
  *p++ = '\n';
  w->out_len = (size_t)(p - w->out);
  return ST_OK;
}

static int tokenize_chunk(tokenize_worker *w, char **err) {
  w->out_len = 0;
  for (size_t pos = 0; pos < w->text_len;) {
    const char *line = w->text + pos;
    size_t len = (size_t)((const char *)memchr(line, '\n', w->text_len - pos) - line);
    w->ids.len = 0;
    int rc = tok_encode(w->tok, line, len, &w->ids, NULL, err);
    if (rc != ST_OK) return rc;
    if (tokenize_format_line(w, &w->ids) != ST_OK)
      return status_set(err, ST_NOMEM, "out of memory formatting %zu tokens", w->ids.len);
    pos += len + 1;
  }
  return ST_OK;
}

/* Reads the next chunk into w and numbers it; 0 when there is none to do
 * (the input ended or a chunk failed). A chunk that failed to read is taken,
 * so that its failure is reported in its turn. */
static int tokenize_take_chunk(tokenize_worker *w, uint64_t *seq, int *rc) {
  tokenize_job *job = w->job;
  int took = 0;
  pthread_mutex_lock(&job->read_mu);
  if (!job->ended) {
    *rc = tokenize_read_chunk(w, &w->err);
    took = *rc != ST_OK || w->text_len > 0;
    job->ended = !took || *rc != ST_OK;
    *seq = job->next_read;
    job->next_read += (uint64_t)took;
  }
  pthread_mutex_unlock(&job->read_mu);
  return took;
}

static void tokenize_stop_reading(tokenize_job *job) {
  pthread_mutex_lock(&job->read_mu);
  job->ended = 1;
  pthread_mutex_unlock(&job->read_mu);
}

static int tokenize_write(file_atomic *file, const char *data, size_t len, char **err) {
  if (file) return file_atomic_write(file, data, len, err);
  if (fwrite(data, 1, len, stdout) == len) return ST_OK;
  return status_set(err, ST_IO, "cannot write standard output: %s", strerror(errno));
}

/* Waits for chunk seq's turn, then writes its output, or records its
 * failure (rc) if it is the first. Returns the job's status: once a chunk
 * has failed, later ones write nothing and their workers stop. */
static int tokenize_write_turn(tokenize_worker *w, uint64_t seq, int rc) {
  tokenize_job *job = w->job;
  pthread_mutex_lock(&job->write_mu);
  while (job->next_write != seq) pthread_cond_wait(&job->turn, &job->write_mu);
  if (job->rc == ST_OK && rc == ST_OK) rc = tokenize_write(job->file, w->out, w->out_len, &w->err);
  if (job->rc == ST_OK && rc != ST_OK) {
    job->rc = rc;
    job->err = w->err;
    w->err = NULL;
  }
  rc = job->rc;
  job->next_write++;
  pthread_cond_broadcast(&job->turn);
  pthread_mutex_unlock(&job->write_mu);
  return rc;
}

static void *tokenize_worker_main(void *arg) {
  tokenize_worker *w = arg;
  uint64_t seq;
  int rc;
  while (tokenize_take_chunk(w, &seq, &rc)) {
    if (rc == ST_OK) rc = tokenize_chunk(w, &w->err);
    if (tokenize_write_turn(w, seq, rc) != ST_OK) {
      tokenize_stop_reading(w->job);
      break;
    }
  }
  return NULL;
}

/* Runs nthreads workers over the input (the calling thread is one of them)
 * and writes the output in input order to file (NULL: standard output). */
static int tokenize_stream(const char *in_path, file_atomic *file, const tok_vocab *v,
                           int lowercase, int as_ids, int nthreads, char **err) {
  tokenize_job job = {.v = v, .file = file};
  tokenize_worker *workers = calloc((size_t)nthreads, sizeof *workers);
  int started = 0, rc = workers ? ST_OK : status_set(err, ST_NOMEM, "out of memory");
  pthread_mutex_init(&job.read_mu, NULL);
  pthread_mutex_init(&job.write_mu, NULL);
  pthread_cond_init(&job.turn, NULL);
  if (rc == ST_OK) rc = tokenize_spell(&job.spell, v, as_ids, err);
  if (rc == ST_OK) rc = tok_lines_open(in_path, TOK_LINES_MAX_BYTES, &job.lines, err);
  for (int i = 0; i < nthreads && rc == ST_OK; i++) {
    workers[i].job = &job;
    rc = tok_create(v, lowercase, &workers[i].tok, err);
  }
  if (rc != ST_OK) goto fail;
  for (; started < nthreads - 1; started++) {
    if (pthread_create(&workers[started + 1].thread, NULL, tokenize_worker_main, &workers[started + 1]) != 0) {
      tokenize_stop_reading(&job);
      rc = status_set(err, ST_NOMEM, "cannot start tokenizer thread %d of %d; try fewer --threads",
                      started + 2, nthreads);
      break;
    }
  }
  tokenize_worker_main(&workers[0]);
  for (int i = 0; i < started; i++) pthread_join(workers[i + 1].thread, NULL);
  if (job.rc != ST_OK) {
    rc = job.rc;
    free(*err);
    *err = job.err;
  }
fail:
  for (int i = 0; workers && i < nthreads; i++) {
    tok_free(workers[i].tok);
    tok_ids_free(&workers[i].ids);
    free(workers[i].text);
    free(workers[i].out);
    free(workers[i].err);
  }
  free(workers);
  tok_lines_close(job.lines);
  free(job.spell);
  pthread_cond_destroy(&job.turn);
  pthread_mutex_destroy(&job.write_mu);
  pthread_mutex_destroy(&job.read_mu);
  return rc;
}

/* Output under out_path appears whole or not at all (temporary, fsync,
 * rename, directory fsync): a failed run leaves what was there before. */
static int tokenize_to_file(const char *in_path, const char *out_path, const tok_vocab *v,
                            int lowercase, int as_ids, int nthreads, char **err) {
  file_atomic *file = NULL;
  int rc = file_atomic_open(out_path, &file, err);
  if (rc != ST_OK) return rc;
  rc = tokenize_stream(in_path, file, v, lowercase, as_ids, nthreads, err);
  if (rc != ST_OK) {
    file_atomic_abort(file);
    return rc;
  }
  return file_atomic_commit(file, err);
}

int cmd_tokenize(int argc, char **argv) {
  static const struct option opts[] = {
      {"vocab", required_argument, NULL, 'v'}, {"cased", no_argument, NULL, 'c'},
      {"ids", no_argument, NULL, 'i'},         {"out", required_argument, NULL, 'o'},
      {"threads", required_argument, NULL, 't'}, {NULL, 0, NULL, 0},
  };
  const char *vocab_path = NULL, *out_path = NULL;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int cased = 0, as_ids = 0, opt;
  int nthreads = cpus < 1 ? 1 : cpus > TOKENIZE_MAX_THREADS ? TOKENIZE_MAX_THREADS : (int)cpus;
  opterr = 0;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (opt) {
    case 'v': vocab_path = optarg; break;
    case 'c': cased = 1; break;
    case 'i': as_ids = 1; break;
    case 'o': out_path = optarg; break;
    case 't':
      if (cli_parse_int("tokenize", "--threads", optarg, 1, TOKENIZE_MAX_THREADS, &nthreads) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
      break;
    default: return cli_bad_option("tokenize", argc, argv);
    }
  }
  if (!vocab_path) return cli_usage_error("tokenize", "--vocab FILE is required");
  if (argc - optind > 1) return cli_usage_error("tokenize", "expected one input FILE (or -), got %d",
                                                argc - optind);
  const char *in_path = optind < argc ? argv[optind] : "-";

  char *err = NULL;
  tok_vocab *v = NULL;
  if (tok_vocab_load(vocab_path, &v, &err) != ST_OK) return cli_fail("tokenize", err);
  int rc;
  if (out_path) {
    rc = tokenize_to_file(in_path, out_path, v, !cased, as_ids, nthreads, &err);
  } else {
    rc = tokenize_stream(in_path, NULL, v, !cased, as_ids, nthreads, &err);
    if (rc == ST_OK && fflush(stdout) != 0)
      rc = status_set(&err, ST_IO, "cannot write standard output: %s", strerror(errno));
  }
  tok_vocab_free(v);
  return rc == ST_OK ? CLI_EXIT_OK : cli_fail("tokenize", err);
}
