/* The corpus reader (see corpus.h): per-shard cursors over seeded
 * permutations, rows taken from the least-advanced owned shard, masks
 * drawn at read time from (seed, shard, epoch, index). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus/corpus.h"
#include "corpus/masking.h"
#include "corpus/shard_reader.h"
#include "corpus/shuffle.h"
#include "corpus/vocab.h"
#include "util/file.h"
#include "util/sha256.h"
#include "util/status.h"

/* Validation masks use shard words that training shards never reach. */
#define VALID_SHARD_BASE 0x80000000u

void corpus_options_default(corpus_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->batch_size = 32;
  opt->mask_prob = 0.15;
}

size_t corpus_default_max_predictions(double mask_prob, size_t seq_len) {
  size_t p = (size_t)ceil(mask_prob * (double)seq_len);
  if (p > seq_len) p = seq_len;
  return p < 1 ? 1 : p;
}

int corpus_batch_alloc(size_t batch_size, size_t seq_len, corpus_batch **out, char **err) {
  corpus_batch *b = calloc(1, sizeof *b);
  size_t cells = batch_size * seq_len;
  if (b) {
    b->batch_size = batch_size;
    b->seq_len = seq_len;
    b->input_ids = malloc(cells * sizeof(int32_t));
    b->segment_ids = malloc(cells * sizeof(int32_t));
    b->attention_mask = malloc(cells * sizeof(int32_t));
    b->mlm_labels = malloc(cells * sizeof(int32_t));
    b->nsp_labels = malloc(batch_size * sizeof(int32_t));
    b->class_labels = malloc(batch_size * sizeof(int32_t));
    b->tag_labels = malloc(cells * sizeof(int32_t));
    b->samples = calloc(batch_size, sizeof *b->samples);
    b->masked = malloc(cells * sizeof(uint32_t));
    b->num_masked = calloc(batch_size, sizeof(size_t));
  }
  if (!b || !b->input_ids || !b->segment_ids || !b->attention_mask || !b->mlm_labels ||
      !b->nsp_labels || !b->class_labels || !b->tag_labels || !b->samples || !b->masked ||
      !b->num_masked) {
    corpus_batch_free(b);
    return status_set(err, ST_NOMEM, "out of memory for a batch of %zu x %zu", batch_size,
                      seq_len);
  }
  *out = b;
  return ST_OK;
}

void corpus_batch_free(corpus_batch *b) {
  if (!b) return;
  free(b->input_ids);
  free(b->segment_ids);
  free(b->attention_mask);
  free(b->mlm_labels);
  free(b->nsp_labels);
  free(b->class_labels);
  free(b->tag_labels);
  free(b->samples);
  free(b->masked);
  free(b->num_masked);
  free(b);
}

/* What the training reader and the validation reader share: the manifest,
 * the mask settings and per-row scratch. */
typedef struct reader_common {
  char *dir;
  manifest *m;
  corpus_options opt;
  mask_config mask;
  uint8_t *continuation; /* (vocab_size) when whole_word */
  int32_t *ids;          /* (seq_len) one record */
  uint32_t *scratch;     /* (seq_len) for mask_apply */
} reader_common;

static void common_free(reader_common *rc) {
  free(rc->dir);
  manifest_free(rc->m);
  free(rc->continuation);
  free(rc->ids);
  free(rc->scratch);
}

static int check_vocab(reader_common *rc, char **err) {
  if (!rc->opt.vocab_path) return ST_OK;
  uint8_t digest[32];
  char hex[65];
  int st = sha256_file(rc->opt.vocab_path, digest, err);
  if (st) return st;
  sha256_hex(digest, hex);
  if (strcmp(hex, rc->m->vocab_sha256) != 0)
    return status_set(err, ST_MISMATCH,
                      "vocab %s (SHA-256 %s) is not the vocab corpus %s was sharded with "
                      "(SHA-256 %s): use that corpus's %s or reshard with this vocab",
                      rc->opt.vocab_path, hex, rc->dir, rc->m->vocab_sha256, MANIFEST_VOCAB_FILE);
  return ST_OK;
}

/* The vocab copied into the corpus must be the one its manifest names
 * (hash and size), checked at every open: a corpus whose vocab.txt or
 * manifest was edited is refused before training starts. Whole-word
 * masking also takes from it which ids continue a word ("##..."). */
static int load_corpus_vocab(reader_common *rc, char **err) {
  char *path = file_path_join(rc->dir, MANIFEST_VOCAB_FILE);
  if (!path) return status_set(err, ST_NOMEM, "out of memory opening corpus %s", rc->dir);
  tok_vocab *v = NULL;
  int st = tok_vocab_load(path, &v, err);
  if (st) {
    status_wrap(err, st, "corpus %s", rc->dir);
    goto done;
  }
  if (strcmp(tok_vocab_sha256_hex(v), rc->m->vocab_sha256) != 0 ||
      (int64_t)tok_vocab_size(v) != rc->m->vocab_size) {
    st = status_set(err, ST_MISMATCH, "%s (%zu tokens, SHA-256 %s) is not the vocab the manifest "
                    "names (%lld tokens, SHA-256 %s): the corpus is damaged or edited; reshard it",
                    path, tok_vocab_size(v), tok_vocab_sha256_hex(v), (long long)rc->m->vocab_size,
                    rc->m->vocab_sha256);
    goto done;
  }
  if (!rc->opt.whole_word) goto done;
  rc->continuation = calloc((size_t)rc->m->vocab_size, 1);
  if (!rc->continuation) {
    st = status_set(err, ST_NOMEM, "out of memory loading %s", path);
    goto done;
  }
  for (int32_t id = 0; id < (int32_t)rc->m->vocab_size; id++)
    rc->continuation[id] = strncmp(tok_vocab_token(v, id), "##", 2) == 0;
done:
  tok_vocab_free(v);
  free(path);
  return st;
}

static int common_init(reader_common *rc, const char *dir, const corpus_options *opt, char **err) {
  memset(rc, 0, sizeof *rc);
  rc->opt = *opt;
  rc->dir = strdup(dir);
  if (!rc->dir) return status_set(err, ST_NOMEM, "out of memory opening corpus %s", dir);
  if (opt->batch_size == 0 || !(opt->mask_prob > 0 && opt->mask_prob < 1))
    return status_set(err, ST_INVALID, "batch size %zu, mask probability %g: each must be positive (and the "
                      "probability below 1)", opt->batch_size, opt->mask_prob);
  int st = manifest_read(dir, &rc->m, err);
  if (st) return st;
  if (rc->opt.max_predictions == 0)
    rc->opt.max_predictions = corpus_default_max_predictions(opt->mask_prob, rc->m->seq_len);
  if ((st = check_vocab(rc, err))) return st;
  if ((st = load_corpus_vocab(rc, err))) return st;
  rc->ids = malloc(rc->m->seq_len * sizeof *rc->ids);
  rc->scratch = malloc(rc->m->seq_len * sizeof *rc->scratch);
  if (!rc->ids || !rc->scratch) return status_set(err, ST_NOMEM, "out of memory opening %s", dir);
  rc->mask = (mask_config){
      .prob = opt->mask_prob,
      .max_predictions = rc->opt.max_predictions,
      .whole_word = opt->whole_word,
      .cls_id = rc->m->cls_id,
      .sep_id = rc->m->sep_id,
      .pad_id = rc->m->pad_id,
      .mask_id = rc->m->mask_id,
      .vocab_size = (int32_t)rc->m->vocab_size,
      .continuation = rc->continuation,
  };
  return ST_OK;
}

static int open_shard(const reader_common *rc, const manifest_shard *s, shard_reader **out,
                      char **err) {
  return shard_reader_open(rc->dir, rc->m, s, out, err);
}

/* Writes row `row` of b from rec: ids (masked in a pretraining corpus),
 * segments, attention, labels, and the list of masked positions. A
 * labelled record is not masked: its labels are the class or the tags. */
static void fill_row(reader_common *rc, const record *rec, corpus_sample where, uint32_t mask_shard,
                     corpus_batch *b, size_t row) {
  size_t L = b->seq_len;
  int32_t *in = b->input_ids + row * L, *seg = b->segment_ids + row * L;
  int32_t *att = b->attention_mask + row * L, *lab = b->mlm_labels + row * L;
  int32_t *tag = b->tag_labels + row * L;
  if (rec->kind == RECORD_PLAIN) {
    mask_apply(&rc->mask, rc->opt.seed, mask_shard, where.epoch, (uint32_t)where.index, rec->ids,
               rec->n, in, lab, rc->scratch);
  } else {
    memcpy(in, rec->ids, rec->n * sizeof *in);
    for (size_t i = 0; i < rec->n; i++) lab[i] = -1;
  }
  uint32_t *masked = b->masked + row * L;
  size_t nm = 0;
  for (size_t i = 0; i < rec->n; i++) {
    seg[i] = i >= rec->split;
    att[i] = 1;
    tag[i] = rec->kind == RECORD_TAGS ? rec->tags[i] : CORPUS_IGNORE_LABEL;
    if (lab[i] >= 0) masked[nm++] = (uint32_t)i;
  }
  for (size_t i = rec->n; i < L; i++) {
    in[i] = rc->m->pad_id;
    seg[i] = 0;
    att[i] = 0;
    lab[i] = -1;
    tag[i] = CORPUS_IGNORE_LABEL;
  }
  b->num_masked[row] = nm;
  b->nsp_labels[row] = rec->pair && rec->kind == RECORD_PLAIN ? rec->random_next : -1;
  b->class_labels[row] = rec->kind == RECORD_CLASS ? rec->label : CORPUS_IGNORE_LABEL;
  b->samples[row] = where;
}

static void clear_row(const reader_common *rc, corpus_batch *b, size_t row) {
  size_t L = b->seq_len;
  for (size_t i = 0; i < L; i++) {
    b->input_ids[row * L + i] = rc->m->pad_id;
    b->segment_ids[row * L + i] = 0;
    b->attention_mask[row * L + i] = 0;
    b->mlm_labels[row * L + i] = -1;
    b->tag_labels[row * L + i] = CORPUS_IGNORE_LABEL;
  }
  b->nsp_labels[row] = -1;
  b->class_labels[row] = CORPUS_IGNORE_LABEL;
  b->num_masked[row] = 0;
  b->samples[row] = (corpus_sample){UINT32_MAX, 0, 0};
}

/* ------------------------------------------------------------- training */

typedef struct owned_shard {
  uint32_t shard;
  uint64_t n;
  shard_reader *reader;
  shuffle_perm perm; /* of cursor's epoch */
} owned_shard;

struct corpus {
  reader_common rc;
  int rank, world;
  corpus_cursor *cursors; /* (num_shards) */
  owned_shard *owned;     /* (num_owned) */
  size_t num_owned;
};

int corpus_open(const char *dir, int rank, int world, const corpus_options *opt, corpus **out,
                char **err) {
  corpus *c = calloc(1, sizeof *c);
  if (!c) return status_set(err, ST_NOMEM, "out of memory opening corpus %s", dir);
  int st = common_init(&c->rc, dir, opt, err);
  if (st) goto fail;
  const manifest *m = c->rc.m;
  if (world < 1 || rank < 0 || rank >= world) {
    st = status_set(err, ST_INVALID, "rank %d of world %d is not a valid rank", rank, world);
    goto fail;
  }
  if ((size_t)world > m->num_shards) {
    st = status_set(err, ST_INVALID, "%d ranks but corpus %s has only %zu shards: reshard with "
                    "--shards %d or more (a multiple of %d keeps ranks balanced), or run fewer "
                    "ranks", world, dir, m->num_shards, world, world);
    goto fail;
  }
  c->rank = rank;
  c->world = world;
  c->cursors = calloc(m->num_shards, sizeof *c->cursors);
  c->owned = calloc(m->num_shards / (size_t)world + 1, sizeof *c->owned);
  if (!c->cursors || !c->owned) {
    st = status_set(err, ST_NOMEM, "out of memory opening corpus %s", dir);
    goto fail;
  }
  for (size_t s = 0; s < m->num_shards; s++) {
    if (m->shards[s].sequences > UINT32_MAX) {
      st = status_set(err, ST_INVALID, "corpus %s: shard %s holds %llu sequences, more than "
                      "2^32: reshard with more shards", dir, m->shards[s].name,
                      (unsigned long long)m->shards[s].sequences);
      goto fail;
    }
    c->cursors[s] = (corpus_cursor){(uint32_t)s, 0, 0};
    if (s % (size_t)world != (size_t)rank) continue;
    owned_shard *o = &c->owned[c->num_owned++];
    o->shard = (uint32_t)s;
    o->n = m->shards[s].sequences;
    if ((st = open_shard(&c->rc, &m->shards[s], &o->reader, err))) goto fail;
    shuffle_perm_init(&o->perm, o->n, opt->seed, o->shard, 0);
  }
  *out = c;
  return ST_OK;
fail:
  corpus_close(c);
  return st;
}

void corpus_close(corpus *c) {
  if (!c) return;
  for (size_t i = 0; i < c->num_owned; i++) shard_reader_close(c->owned[i].reader);
  free(c->owned);
  free(c->cursors);
  common_free(&c->rc);
  free(c);
}

const manifest *corpus_manifest(const corpus *c) { return c->rc.m; }
size_t corpus_num_shards(const corpus *c) { return c->rc.m->num_shards; }
int corpus_owns_shard(const corpus *c, size_t shard) {
  return shard < c->rc.m->num_shards && shard % (size_t)c->world == (size_t)c->rank;
}

/* a is less far through its stream than b: compares epoch + position / n
 * exactly (positions and sizes are below 2^32, so products fit 64 bits). */
static int behind(const corpus_cursor *a, uint64_t na, const corpus_cursor *b, uint64_t nb) {
  if (a->epoch != b->epoch) return a->epoch < b->epoch;
  return a->position * nb < b->position * na;
}

int corpus_next_batch(corpus *c, corpus_batch *b, char **err) {
  const manifest *m = c->rc.m;
  if (b->batch_size != c->rc.opt.batch_size || b->seq_len != m->seq_len)
    return status_set(err, ST_INVALID, "batch of %zu x %zu given, the corpus reads %zu x %zu",
                      b->batch_size, b->seq_len, c->rc.opt.batch_size, m->seq_len);
  for (size_t row = 0; row < b->batch_size; row++) {
    owned_shard *best = &c->owned[0];
    for (size_t i = 1; i < c->num_owned; i++) {
      owned_shard *o = &c->owned[i];
      if (behind(&c->cursors[o->shard], o->n, &c->cursors[best->shard], best->n)) best = o;
    }
    corpus_cursor *cur = &c->cursors[best->shard];
    corpus_sample where = {best->shard, cur->epoch, shuffle_perm_at(&best->perm, cur->position)};
    record rec;
    int st = shard_reader_get(best->reader, where.index, c->rc.ids, &rec, err);
    if (!st && (st = record_check_task(&rec, m, err)))
      status_wrap(err, st, "corpus %s, shard %s, key %llu", c->rc.dir, m->shards[best->shard].name,
                  (unsigned long long)where.index);
    if (st) return st;
    fill_row(&c->rc, &rec, where, best->shard, b, row);
    if (++cur->position == best->n) {
      cur->position = 0;
      cur->epoch++;
      shuffle_perm_init(&best->perm, best->n, c->rc.opt.seed, best->shard, cur->epoch);
    }
  }
  b->count = b->batch_size;
  return ST_OK;
}

void corpus_state_get(const corpus *c, corpus_cursor *cursors) {
  memcpy(cursors, c->cursors, c->rc.m->num_shards * sizeof *cursors);
}

int corpus_state_set(corpus *c, const corpus_cursor *cursors, size_t n, char **err) {
  const manifest *m = c->rc.m;
  if (n != m->num_shards)
    return status_set(err, ST_INVALID, "data state has %zu shard cursors, corpus %s has %zu "
                      "shards: the state belongs to another corpus", n, c->rc.dir, m->num_shards);
  for (size_t s = 0; s < n; s++)
    if (cursors[s].shard != s || cursors[s].position >= m->shards[s].sequences ||
        cursors[s].epoch == UINT32_MAX)
      return status_set(err, ST_INVALID, "data state entry %zu (shard %u, epoch %u, position "
                        "%llu) does not fit corpus %s (shard %zu holds %llu sequences)", s,
                        cursors[s].shard, cursors[s].epoch,
                        (unsigned long long)cursors[s].position, c->rc.dir, s,
                        (unsigned long long)m->shards[s].sequences);
  memcpy(c->cursors, cursors, n * sizeof *cursors);
  for (size_t i = 0; i < c->num_owned; i++) {
    owned_shard *o = &c->owned[i];
    shuffle_perm_init(&o->perm, o->n, c->rc.opt.seed, o->shard, c->cursors[o->shard].epoch);
  }
  return ST_OK;
}

/* ----------------------------------------------------------- validation */

/* Validation records are read into memory at open: the set is small and
 * read again at every evaluation. */
typedef struct valid_record {
  size_t offset, n, split; /* ids[offset .. offset+n), tags[offset .. offset+n) */
  int pair, random_next;
  record_kind kind;
  int32_t label;
} valid_record;

struct corpus_valid {
  reader_common rc;
  valid_record *records; /* (total) */
  int32_t *ids, *tags;   /* tags (a tag corpus only): each record's, at its ids' offset */
  uint64_t total;
};

static int load_valid_shard(corpus_valid *v, size_t s, size_t *used, size_t *cap, char **err) {
  const manifest_shard *ms = &v->rc.m->valid[s];
  shard_reader *sr = NULL;
  int st = open_shard(&v->rc, ms, &sr, err);
  for (uint64_t i = 0; !st && i < ms->sequences; i++) {
    if (*cap - *used < v->rc.m->seq_len) {
      size_t ncap = 2 * *cap + v->rc.m->seq_len;
      int32_t *nids = realloc(v->ids, ncap * sizeof *nids);
      if (!nids) {
        st = status_set(err, ST_NOMEM, "out of memory loading validation shard %s", ms->name);
        break;
      }
      v->ids = nids;
      if (v->rc.m->task == MANIFEST_TASK_TAG) {
        int32_t *ntags = realloc(v->tags, ncap * sizeof *ntags);
        if (!ntags) {
          st = status_set(err, ST_NOMEM, "out of memory loading validation shard %s", ms->name);
          break;
        }
        v->tags = ntags;
      }
      *cap = ncap;
    }
    record rec;
    if ((st = shard_reader_get(sr, i, v->ids + *used, &rec, err))) break;
    if ((st = record_check_task(&rec, v->rc.m, err))) {
      status_wrap(err, st, "corpus %s, shard %s, key %llu", v->rc.dir, ms->name,
                  (unsigned long long)i);
      break;
    }
    if (rec.kind == RECORD_TAGS) memcpy(v->tags + *used, rec.tags, rec.n * sizeof *v->tags);
    v->records[v->total++] = (valid_record){*used, rec.n, rec.split, rec.pair, rec.random_next,
                                            rec.kind, rec.label};
    *used += rec.n;
  }
  shard_reader_close(sr);
  return st;
}

int corpus_valid_open(const char *dir, const corpus_options *opt, corpus_valid **out, char **err) {
  corpus_valid *v = calloc(1, sizeof *v);
  if (!v) return status_set(err, ST_NOMEM, "out of memory opening corpus %s", dir);
  int st = common_init(&v->rc, dir, opt, err);
  if (st) goto fail;
  const manifest *m = v->rc.m;
  if (m->num_valid == 0) {
    st = status_set(err, ST_INVALID, "corpus %s has no validation shards: reshard with "
                    "--valid-fraction (e.g. 0.01)", dir);
    goto fail;
  }
  uint64_t count = 0;
  for (size_t i = 0; i < m->num_valid; i++) count += m->valid[i].sequences;
  v->records = calloc(count, sizeof *v->records);
  if (!v->records) {
    st = status_set(err, ST_NOMEM, "out of memory opening corpus %s", dir);
    goto fail;
  }
  size_t used = 0, cap = 0;
  for (size_t i = 0; i < m->num_valid && !st; i++) st = load_valid_shard(v, i, &used, &cap, err);
  if (st) goto fail;
  *out = v;
  return ST_OK;
fail:
  corpus_valid_close(v);
  return st;
}

void corpus_valid_close(corpus_valid *v) {
  if (!v) return;
  free(v->records);
  free(v->ids);
  free(v->tags);
  common_free(&v->rc);
  free(v);
}

uint64_t corpus_valid_size(const corpus_valid *v) { return v->total; }

int corpus_valid_batch(corpus_valid *v, uint64_t start, corpus_batch *b, char **err) {
  const manifest *m = v->rc.m;
  if (b->seq_len != m->seq_len)
    return status_set(err, ST_INVALID, "batch of seq_len %zu given, the corpus has %zu",
                      b->seq_len, m->seq_len);
  b->count = 0;
  for (size_t row = 0; row < b->batch_size; row++) {
    uint64_t g = start + row;
    if (g >= v->total) {
      clear_row(&v->rc, b, row);
      continue;
    }
    size_t s = 0;
    while (g >= m->valid[s].sequences) g -= m->valid[s++].sequences;
    const valid_record *vr = &v->records[start + row];
    record rec = {v->ids + vr->offset, vr->n, vr->split, vr->pair, vr->random_next, vr->kind,
                  vr->label, vr->kind == RECORD_TAGS ? v->tags + vr->offset : NULL};
    fill_row(&v->rc, &rec, (corpus_sample){(uint32_t)s, 0, g}, VALID_SHARD_BASE + (uint32_t)s, b,
             row);
    b->count++;
  }
  return ST_OK;
}
