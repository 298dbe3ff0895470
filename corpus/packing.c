/* The two packers of packing.h. NSP follows google-research/bert
 * create_instances_from_document step by step, except that the random next
 * segment comes from a window of recent documents (bounded memory, one
 * pass) rather than from the whole corpus held in memory. */
#include "corpus/packing.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"
#include "util/status.h"

#define PACK_SEED_TAG 0x7061636b696e6731ull /* "packing1" */

typedef struct pack_doc {
  int32_t *ids;
  size_t *sent_end;
  size_t nsent, ntok;
} pack_doc;

struct packer {
  pack_config cfg;
  pack_emit_fn emit;
  void *ctx;
  uint64_t documents;
  int32_t *seq;  /* (seq_len) the sequence being built */
  size_t seq_n;  /* greedy: tokens in seq, [CLS] included */
  int32_t *a, *b; /* NSP: segment buffers */
  size_t a_cap, b_cap;
  pack_doc *window; /* NSP: ring of window_docs previous documents */
  size_t window_n, window_next;
};

int packer_create(const pack_config *cfg, pack_emit_fn emit, void *ctx, packer **out, char **err) {
  assert(cfg->seq_len >= 8 && cfg->seq_len <= RECORD_MAX_TOKENS);
  packer *p = calloc(1, sizeof *p);
  if (!p) return status_set(err, ST_NOMEM, "out of memory creating a packer");
  p->cfg = *cfg;
  if (p->cfg.window_docs == 0) p->cfg.window_docs = 1;
  p->emit = emit;
  p->ctx = ctx;
  p->seq = malloc(cfg->seq_len * sizeof *p->seq);
  p->window = calloc(p->cfg.window_docs, sizeof *p->window);
  if (!p->seq || !p->window) {
    packer_free(p);
    return status_set(err, ST_NOMEM, "out of memory creating a packer");
  }
  p->seq[0] = cfg->cls_id;
  p->seq_n = 1;
  *out = p;
  return ST_OK;
}

void packer_free(packer *p) {
  if (!p) return;
  for (size_t i = 0; p->window && i < p->cfg.window_docs; i++) {
    free(p->window[i].ids);
    free(p->window[i].sent_end);
  }
  free(p->window);
  free(p->seq);
  free(p->a);
  free(p->b);
  free(p);
}

uint64_t packer_documents(const packer *p) { return p->documents; }

/* ------------------------------------------------------ full sentences */

static int greedy_flush(packer *p, char **err) {
  if (p->seq_n <= 1) return ST_OK;
  p->seq[p->seq_n++] = p->cfg.sep_id;
  record rec = {.ids = p->seq, .n = p->seq_n, .split = p->seq_n};
  p->seq_n = 1;
  return p->emit(p->ctx, &rec, err);
}

static int greedy_add(packer *p, const int32_t *ids, size_t n, int new_doc, char **err) {
  size_t room = p->cfg.seq_len - 2; /* content tokens between [CLS] and [SEP] */
  while (n > 0) {
    /* A document that continues a sequence is set off by a [SEP]. */
    size_t sep = (new_doc && p->seq_n > 1) ? 1 : 0;
    size_t used = p->seq_n - 1;
    if (used + sep + n > room && used > 0) {
      int st = greedy_flush(p, err);
      if (st) return st;
      continue;
    }
    if (sep) p->seq[p->seq_n++] = p->cfg.sep_id;
    size_t take = n < room - used - sep ? n : room - used - sep;
    memcpy(p->seq + p->seq_n, ids, take * sizeof *ids);
    p->seq_n += take;
    ids += take;
    n -= take;
    new_doc = 0;
    if (n > 0) {
      int st = greedy_flush(p, err);
      if (st) return st;
    }
  }
  return ST_OK;
}

/* ------------------------------------------------------------ NSP pairs */

static size_t randint(rng_stream *r, size_t lo, size_t hi) { /* inclusive, as Python's */
  return lo + rng_next_below(r, (uint32_t)(hi - lo + 1));
}

static int grow(int32_t **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  int32_t *nb = realloc(*buf, c * sizeof *nb);
  if (!nb) return -1;
  *buf = nb;
  *cap = c;
  return 0;
}

static size_t sent_start(const size_t *sent_end, size_t i) { return i ? sent_end[i - 1] : 0; }

/* Emits [CLS] a [SEP] b [SEP] after BERT's truncate_seq_pair: tokens come
 * off the longer side, front or back at random, until the pair fits. */
static int emit_pair(packer *p, rng_stream *r, size_t na, size_t nb, int random_next, char **err) {
  size_t max = p->cfg.seq_len - 3, a0 = 0, b0 = 0;
  while (na + nb > max) {
    int from_a = na > nb;
    size_t *start = from_a ? &a0 : &b0, *len = from_a ? &na : &nb;
    if (rng_next_below(r, 2) == 0) (*start)++;
    (*len)--;
  }
  if (na == 0 || nb == 0) return ST_OK;
  size_t n = 0;
  p->seq[n++] = p->cfg.cls_id;
  memcpy(p->seq + n, p->a + a0, na * sizeof *p->seq);
  n += na;
  p->seq[n++] = p->cfg.sep_id;
  size_t split = n;
  memcpy(p->seq + n, p->b + b0, nb * sizeof *p->seq);
  n += nb;
  p->seq[n++] = p->cfg.sep_id;
  record rec = {.ids = p->seq, .n = n, .split = split, .pair = 1, .random_next = random_next};
  return p->emit(p->ctx, &rec, err);
}

static int nsp_document(packer *p, const int32_t *ids, const size_t *sent_end, size_t nsent,
                        char **err) {
  rng_stream r;
  rng_stream_init(&r, rng_mix64(p->cfg.seed ^ PACK_SEED_TAG), (uint32_t)p->documents,
                  (uint32_t)(p->documents >> 32), 0);
  size_t max_tokens = p->cfg.seq_len - 3, target = max_tokens;
  if (rng_next_uniform_double(&r) < p->cfg.short_seq_prob) target = randint(&r, 2, max_tokens);
  size_t chunk_first = 0, chunk_len = 0;
  for (size_t i = 0; i < nsent; i++) {
    chunk_len += sent_end[i] - sent_start(sent_end, i);
    if (i + 1 < nsent && chunk_len < target) continue;
    size_t nchunk = i + 1 - chunk_first;
    size_t a_end = nchunk >= 2 ? randint(&r, 1, nchunk - 1) : 1;
    size_t a_from = sent_start(sent_end, chunk_first);
    size_t a_to = sent_end[chunk_first + a_end - 1];
    size_t na = a_to - a_from, nb = 0;
    if (grow(&p->a, &p->a_cap, na)) return status_set(err, ST_NOMEM, "out of memory packing");
    memcpy(p->a, ids + a_from, na * sizeof *ids);
    int random_next = nchunk == 1 || rng_next_uniform_double(&r) < 0.5;
    if (random_next && p->window_n == 0 && nchunk == 1) {
      /* The corpus's first document has no other document to pair with. */
      chunk_first = i + 1;
      chunk_len = 0;
      continue;
    }
    if (random_next && p->window_n > 0) {
      size_t target_b = target > na ? target - na : 1;
      const pack_doc *d = &p->window[rng_next_below(&r, (uint32_t)p->window_n)];
      size_t j = rng_next_below(&r, (uint32_t)d->nsent);
      size_t from = sent_start(d->sent_end, j), to = from;
      for (; j < d->nsent; j++) {
        to = d->sent_end[j];
        if (to - from >= target_b) break;
      }
      nb = to - from;
      if (grow(&p->b, &p->b_cap, nb)) return status_set(err, ST_NOMEM, "out of memory packing");
      memcpy(p->b, d->ids + from, nb * sizeof *ids);
      /* The unused sentences of this chunk start the next one. */
      i = chunk_first + a_end - 1;
    } else {
      random_next = 0;
      nb = sent_end[i] - a_to;
      if (grow(&p->b, &p->b_cap, nb)) return status_set(err, ST_NOMEM, "out of memory packing");
      memcpy(p->b, ids + a_to, nb * sizeof *ids);
    }
    int st = emit_pair(p, &r, na, nb, random_next, err);
    if (st) return st;
    chunk_first = i + 1;
    chunk_len = 0;
  }
  return ST_OK;
}

static int window_push(packer *p, const int32_t *ids, const size_t *sent_end, size_t nsent,
                       char **err) {
  pack_doc *d = &p->window[p->window_next];
  size_t ntok = sent_end[nsent - 1];
  int32_t *nids = realloc(d->ids, (ntok ? ntok : 1) * sizeof *nids);
  if (!nids) return status_set(err, ST_NOMEM, "out of memory packing");
  d->ids = nids;
  size_t *nends = realloc(d->sent_end, nsent * sizeof *nends);
  if (!nends) return status_set(err, ST_NOMEM, "out of memory packing");
  d->sent_end = nends;
  memcpy(d->ids, ids, ntok * sizeof *ids);
  memcpy(d->sent_end, sent_end, nsent * sizeof *sent_end);
  d->nsent = nsent;
  d->ntok = ntok;
  p->window_next = (p->window_next + 1) % p->cfg.window_docs;
  if (p->window_n < p->cfg.window_docs) p->window_n++;
  return ST_OK;
}

/* ---------------------------------------------------------------- public */

int packer_add_document(packer *p, const int32_t *ids, const size_t *sent_end, size_t nsent,
                        char **err) {
  /* Drop empty sentences, keeping the ends of the others. */
  size_t *ends = malloc((nsent ? nsent : 1) * sizeof *ends);
  int32_t *kept = malloc((nsent && sent_end[nsent - 1] ? sent_end[nsent - 1] : 1) * sizeof *kept);
  int st = ST_OK;
  if (!ends || !kept) {
    st = status_set(err, ST_NOMEM, "out of memory packing");
    goto done;
  }
  size_t k = 0, ntok = 0;
  for (size_t i = 0; i < nsent; i++) {
    size_t from = sent_start(sent_end, i), len = sent_end[i] - from;
    if (len == 0) continue;
    memcpy(kept + ntok, ids + from, len * sizeof *ids);
    ntok += len;
    ends[k++] = ntok;
  }
  if (k == 0) goto done;
  if (p->cfg.nsp) {
    if ((st = nsp_document(p, kept, ends, k, err))) goto done;
    st = window_push(p, kept, ends, k, err);
  } else {
    for (size_t i = 0; i < k && !st; i++) {
      size_t from = sent_start(ends, i);
      st = greedy_add(p, kept + from, ends[i] - from, i == 0, err);
    }
  }
  p->documents++;
done:
  free(ends);
  free(kept);
  return st;
}

int packer_finish(packer *p, char **err) { return p->cfg.nsp ? ST_OK : greedy_flush(p, err); }
