/* corpus reader: over an epoch every sample is read exactly once for world
 * sizes 1-4, a sample's masks do not depend on the world size, a saved
 * state continues the same streams, on the same or another world size, and
 * a shard changed under a reader stops it, naming the shard. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "corpus/corpus.h"
#include "corpus/shard_reader.h"
#include "corpus/vocab.h"
#include "harness.h"
#include "test_shard_fixture.h"
#include "util/file.h"
#include "util/status.h"

#define SHARDS 5

typedef struct sample_set {
  const manifest *m;
  uint32_t *count[SHARDS];  /* reads of each (shard, index) in epoch 0 */
  uint64_t *digest[SHARDS]; /* hash of the masked row and labels, per sample */
} sample_set;

static fixture fx;

/* Each test's corpus: 5 shards of uneven sizes, NSP pairs, validation. */
static void setup(void) {
  fixture_init(&fx, "reader", 700, 9);
  shard_options opt = fixture_options(&fx, SHARDS, 48);
  opt.nsp = 1;
  opt.valid_fraction = 0.05;
  fixture_shard(&opt);
}

static void teardown(void) { fixture_free(&fx); }

static const char *corpus_dir(void) { return fx.out; }

static corpus *open_corpus(int rank, int world, size_t batch) {
  corpus_options opt;
  corpus_options_default(&opt);
  opt.batch_size = batch;
  opt.seed = 11;
  corpus *c = NULL;
  char *err = NULL;
  int rc = corpus_open(corpus_dir(), rank, world, &opt, &c, &err);
  if (rc) fprintf(stderr, "%s\n", err);
  free(err);
  CU_ASSERT_EQUAL_FATAL(rc, ST_OK);
  return c;
}

static uint64_t row_digest(const corpus_batch *b, size_t row) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < b->seq_len; i++) {
    h = (h ^ (uint32_t)b->input_ids[row * b->seq_len + i]) * 1099511628211ull;
    h = (h ^ (uint32_t)b->mlm_labels[row * b->seq_len + i]) * 1099511628211ull;
    h = (h ^ (uint32_t)b->segment_ids[row * b->seq_len + i]) * 1099511628211ull;
  }
  return h;
}

static void set_init(sample_set *s, const manifest *m) {
  s->m = m;
  for (size_t k = 0; k < SHARDS; k++) {
    s->count[k] = calloc(m->shards[k].sequences, sizeof(uint32_t));
    s->digest[k] = calloc(m->shards[k].sequences, sizeof(uint64_t));
  }
}

static void set_free(sample_set *s) {
  for (size_t k = 0; k < SHARDS; k++) {
    free(s->count[k]);
    free(s->digest[k]);
  }
}

/* Reads rows one at a time until `rows` rows were read, recording each. */
static void read_rows(corpus *c, uint64_t rows, sample_set *s) {
  corpus_batch *b = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(corpus_batch_alloc(1, s->m->seq_len, &b, &err), ST_OK);
  for (uint64_t r = 0; r < rows; r++) {
    CU_ASSERT_EQUAL_FATAL(corpus_next_batch(c, b, &err), ST_OK);
    corpus_sample w = b->samples[0];
    CU_ASSERT_FATAL(corpus_owns_shard(c, w.shard));
    CU_ASSERT_EQUAL_FATAL(w.epoch, 0);
    s->count[w.shard][w.index]++;
    s->digest[w.shard][w.index] = row_digest(b, 0);
  }
  corpus_batch_free(b);
}

static uint64_t owned_sequences(const corpus *c) {
  uint64_t n = 0;
  for (size_t k = 0; k < SHARDS; k++)
    if (corpus_owns_shard(c, k)) n += corpus_manifest(c)->shards[k].sequences;
  return n;
}

static void test_reader_reads_every_sample_once_per_epoch_for_world_1_to_4(void) {
  setup();
  corpus *c1 = open_corpus(0, 1, 1);
  sample_set ref;
  set_init(&ref, corpus_manifest(c1));
  read_rows(c1, owned_sequences(c1), &ref);
  manifest *m = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(manifest_read(corpus_dir(), &m, &err), ST_OK);
  ref.m = m;
  corpus_close(c1); /* a process opens a shard once at a time */
  for (int world = 1; world <= 4; world++) {
    sample_set s;
    set_init(&s, ref.m);
    for (int rank = 0; rank < world; rank++) {
      corpus *c = open_corpus(rank, world, 1);
      read_rows(c, owned_sequences(c), &s);
      corpus_close(c);
    }
    for (size_t k = 0; k < SHARDS; k++)
      for (uint64_t i = 0; i < ref.m->shards[k].sequences; i++) {
        CU_ASSERT_EQUAL_FATAL(s.count[k][i], 1);
        /* Same sample, same masks, whichever rank of whichever world. */
        CU_ASSERT_EQUAL_FATAL(s.digest[k][i], ref.digest[k][i]);
      }
    set_free(&s);
  }
  set_free(&ref);
  manifest_free(m);
  teardown();
}

static void test_reader_refuses_more_ranks_than_shards(void) {
  setup();
  corpus_options opt;
  corpus_options_default(&opt);
  corpus *c = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL(corpus_open(corpus_dir(), 0, SHARDS + 1, &opt, &c, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "--shards 6"));
  free(err);
  teardown();
}

/* The ids and where-from of `steps` batches, as one digest per batch. */
static void read_digests(corpus *c, size_t batch, size_t steps, uint64_t *out) {
  corpus_batch *b = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(corpus_batch_alloc(batch, corpus_manifest(c)->seq_len, &b, &err), ST_OK);
  for (size_t s = 0; s < steps; s++) {
    CU_ASSERT_EQUAL_FATAL(corpus_next_batch(c, b, &err), ST_OK);
    uint64_t h = 0;
    for (size_t r = 0; r < batch; r++)
      h = h * 31 + row_digest(b, r) + b->samples[r].shard * 7919u + b->samples[r].epoch;
    out[s] = h;
  }
  corpus_batch_free(b);
}

static void test_reader_state_restore_continues_the_same_stream(void) {
  setup();
  /* 40 steps of 8 from one rank of two run through epoch ends. */
  uint64_t straight[40], resumed[40];
  corpus *c = open_corpus(1, 2, 8);
  read_digests(c, 8, 40, straight);
  corpus_close(c);
  c = open_corpus(1, 2, 8);
  read_digests(c, 8, 17, resumed);
  corpus_cursor cur[SHARDS];
  corpus_state_get(c, cur);
  corpus_close(c);
  c = open_corpus(1, 2, 8);
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(corpus_state_set(c, cur, SHARDS, &err), ST_OK);
  read_digests(c, 8, 23, resumed + 17);
  CU_ASSERT_EQUAL(memcmp(straight, resumed, sizeof straight), 0);
  /* A state that does not fit is refused. */
  cur[2].position = 1u << 30;
  CU_ASSERT_EQUAL(corpus_state_set(c, cur, SHARDS, &err), ST_INVALID);
  free(err);
  err = NULL;
  CU_ASSERT_EQUAL(corpus_state_set(c, cur, SHARDS - 1, &err), ST_INVALID);
  free(err);
  corpus_close(c);
  teardown();
}

static void test_reader_resumes_an_epoch_on_another_world_size(void) {
  setup();
  manifest *m = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(manifest_read(corpus_dir(), &m, &err), ST_OK);
  sample_set s;
  set_init(&s, m);
  /* World 2 reads part of the epoch; a checkpoint takes each shard's cursor
   * from the rank that owns it. */
  corpus_cursor merged[SHARDS];
  for (int rank = 0; rank < 2; rank++) {
    corpus *c = open_corpus(rank, 2, 1);
    read_rows(c, 9 + (uint64_t)rank * 4, &s);
    corpus_cursor cur[SHARDS];
    corpus_state_get(c, cur);
    for (size_t k = 0; k < SHARDS; k++)
      if (corpus_owns_shard(c, k)) merged[k] = cur[k];
    corpus_close(c);
  }
  /* World 3 finishes the epoch from there. */
  for (int rank = 0; rank < 3; rank++) {
    corpus *c = open_corpus(rank, 3, 1);
    CU_ASSERT_EQUAL_FATAL(corpus_state_set(c, merged, SHARDS, &err), ST_OK);
    uint64_t left = 0;
    for (size_t k = 0; k < SHARDS; k++)
      if (corpus_owns_shard(c, k)) left += m->shards[k].sequences - merged[k].position;
    read_rows(c, left, &s);
    corpus_close(c);
  }
  for (size_t k = 0; k < SHARDS; k++)
    for (uint64_t i = 0; i < m->shards[k].sequences; i++) CU_ASSERT_EQUAL_FATAL(s.count[k][i], 1);
  set_free(&s);
  manifest_free(m);
  teardown();
}

static void test_reader_batch_has_bert_shapes_and_padding(void) {
  setup();
  corpus *c = open_corpus(0, 1, 16);
  const manifest *m = corpus_manifest(c);
  corpus_batch *b = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(corpus_batch_alloc(16, m->seq_len, &b, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(corpus_next_batch(c, b, &err), ST_OK);
  CU_ASSERT_EQUAL(b->count, 16);
  size_t L = m->seq_len;
  for (size_t r = 0; r < 16; r++) {
    const int32_t *in = b->input_ids + r * L, *seg = b->segment_ids + r * L;
    const int32_t *att = b->attention_mask + r * L, *lab = b->mlm_labels + r * L;
    size_t n = 0;
    while (n < L && att[n]) n++;
    for (size_t i = n; i < L; i++)
      CU_ASSERT_FATAL(!att[i] && in[i] == m->pad_id && lab[i] == -1 && seg[i] == 0);
    CU_ASSERT_EQUAL(in[0], m->cls_id);
    CU_ASSERT_EQUAL(lab[0], -1);
    CU_ASSERT(seg[n - 1] == 1 && seg[1] == 0); /* NSP pairs: A then B */
    CU_ASSERT(b->nsp_labels[r] == 0 || b->nsp_labels[r] == 1);
    CU_ASSERT(b->num_masked[r] >= 1 && b->num_masked[r] <= 20);
    for (size_t k = 0; k < b->num_masked[r]; k++) CU_ASSERT(lab[b->masked[r * L + k]] >= 0);
  }
  corpus_batch_free(b);
  corpus_close(c);
  teardown();
}

static void test_reader_validation_is_fixed_and_complete(void) {
  setup();
  corpus_options opt;
  corpus_options_default(&opt);
  opt.seed = 3;
  corpus_valid *v = NULL, *w = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(corpus_valid_open(corpus_dir(), &opt, &v, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(corpus_valid_open(corpus_dir(), &opt, &w, &err), ST_OK);
  uint64_t n = corpus_valid_size(v);
  CU_ASSERT(n > 0);
  corpus_batch *a = NULL, *b = NULL;
  corpus_batch_alloc(7, 48, &a, &err);
  corpus_batch_alloc(7, 48, &b, &err);
  uint64_t seen = 0;
  for (uint64_t start = 0; start < n; start += 7) {
    CU_ASSERT_EQUAL_FATAL(corpus_valid_batch(v, start, a, &err), ST_OK);
    CU_ASSERT_EQUAL_FATAL(corpus_valid_batch(w, start, b, &err), ST_OK);
    CU_ASSERT_EQUAL(memcmp(a->input_ids, b->input_ids, 7 * 48 * sizeof(int32_t)), 0);
    CU_ASSERT_EQUAL(memcmp(a->mlm_labels, b->mlm_labels, 7 * 48 * sizeof(int32_t)), 0);
    CU_ASSERT_EQUAL(a->count, n - start < 7 ? n - start : 7);
    seen += a->count;
  }
  CU_ASSERT_EQUAL(seen, n);
  corpus_batch_free(a);
  corpus_batch_free(b);
  corpus_valid_close(v);
  corpus_valid_close(w);
  teardown();
}

static void test_reader_whole_word_masks_cover_every_piece(void) {
  setup();
  corpus_options opt;
  corpus_options_default(&opt);
  opt.batch_size = 64;
  opt.whole_word = 1;
  corpus *c = NULL;
  corpus_batch *b = NULL;
  tok_vocab *v = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(corpus_open(corpus_dir(), 0, 1, &opt, &c, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(tok_vocab_load(fx.vocab, &v, &err), ST_OK);
  size_t L = corpus_manifest(c)->seq_len, pieces = 0;
  CU_ASSERT_EQUAL_FATAL(corpus_batch_alloc(64, L, &b, &err), ST_OK);
  for (int step = 0; step < 20; step++) {
    CU_ASSERT_EQUAL_FATAL(corpus_next_batch(c, b, &err), ST_OK);
    for (size_t r = 0; r < 64; r++) {
      const int32_t *in = b->input_ids + r * L, *lab = b->mlm_labels + r * L;
      for (size_t i = 1; i + 1 < L; i++) {
        int32_t next = lab[i + 1] >= 0 ? lab[i + 1] : in[i + 1];
        int32_t cur = lab[i] >= 0 ? lab[i] : in[i];
        if (!b->attention_mask[r * L + i + 1] || strncmp(tok_vocab_token(v, next), "##", 2) ||
            cur == corpus_manifest(c)->sep_id) /* B may start inside a word */
          continue;
        /* A word piece is masked exactly when the piece before it is. */
        CU_ASSERT_FATAL((lab[i] >= 0) == (lab[i + 1] >= 0));
        pieces += lab[i] >= 0;
      }
    }
  }
  CU_ASSERT(pieces > 0);
  corpus_batch_free(b);
  tok_vocab_free(v);
  corpus_close(c);
  teardown();
}

/* Path of the first table file of shard 0, from the manifest. */
static char *first_table(void) {
  manifest *m = NULL;
  char *err = NULL, rel[96];
  CU_ASSERT_EQUAL_FATAL(manifest_read(corpus_dir(), &m, &err), ST_OK);
  snprintf(rel, sizeof rel, "%s/%s", m->shards[0].name, m->shards[0].files[0].name);
  manifest_free(m);
  return file_path_join(corpus_dir(), rel);
}

static void append_byte(const char *path) {
  FILE *f = fopen(path, "ab");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputc(0, f);
  fclose(f);
}

/* *err names shard 0 and says the shard changed; frees it. */
static void expect_changed(int rc, char **err) {
  CU_ASSERT_EQUAL(rc, ST_CORRUPT);
  int named = *err && strstr(*err, "shard-00000") && strstr(*err, "changed");
  if (!named) fprintf(stderr, "unexpected: %s\n", *err ? *err : "(no error)");
  CU_ASSERT(named);
  free(*err);
  *err = NULL;
}

/* A table file appended to while a reader has it open: the next read after
 * the once-a-second check stops naming the shard; a new open refuses the
 * file's size. */
static void test_reader_stops_when_a_shard_is_appended_to_under_it(void) {
  setup();
  corpus *c = open_corpus(0, 1, 8);
  corpus_batch *b = NULL;
  char *err = NULL, *path = first_table();
  CU_ASSERT_EQUAL_FATAL(corpus_batch_alloc(8, corpus_manifest(c)->seq_len, &b, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(corpus_next_batch(c, b, &err), ST_OK);
  append_byte(path);
  struct timespec pause = {1, 200 * 1000 * 1000};
  nanosleep(&pause, NULL);
  int rc = ST_OK;
  for (int i = 0; i < 100 && !rc; i++) rc = corpus_next_batch(c, b, &err);
  expect_changed(rc, &err);
  corpus_batch_free(b);
  corpus_close(c);
  corpus_options opt;
  corpus_options_default(&opt);
  c = NULL;
  CU_ASSERT_EQUAL(corpus_open(corpus_dir(), 0, 1, &opt, &c, &err), ST_CORRUPT);
  CU_ASSERT(err && strstr(err, "shard-00000") && strstr(err, "the manifest says"));
  free(err);
  free(path);
  teardown();
}

/* A table file replaced (renamed over) or removed while a shard reader has
 * it open is noticed by the next block read (the opened file lost its
 * name) and by shard_reader_check, naming the shard. */
static void test_reader_notices_a_shard_file_replaced_or_removed(void) {
  setup();
  manifest *m = NULL;
  char *err = NULL, *path = first_table();
  CU_ASSERT_EQUAL_FATAL(manifest_read(corpus_dir(), &m, &err), ST_OK);
  shard_reader *r = NULL;
  int32_t ids[64];
  record rec;
  CU_ASSERT_EQUAL_FATAL(shard_reader_open(corpus_dir(), m, &m->shards[0], &r, &err), ST_OK);
  CU_ASSERT_EQUAL(shard_reader_check(r, &err), ST_OK);
  char *copy = malloc(strlen(path) + 8);
  sprintf(copy, "%s.copy", path);
  char *bytes = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL_FATAL(file_read_all(path, 1 << 30, &bytes, &len, &err), ST_OK);
  FILE *f = fopen(copy, "wb");
  fwrite(bytes, 1, len, f);
  fclose(f);
  CU_ASSERT_EQUAL_FATAL(rename(copy, path), 0); /* same bytes, another file */
  int rc = shard_reader_get(r, 1, ids, &rec, &err);
  expect_changed(rc, &err);
  rc = shard_reader_check(r, &err);
  expect_changed(rc, &err);
  shard_reader_close(r);
  CU_ASSERT_EQUAL_FATAL(shard_reader_open(corpus_dir(), m, &m->shards[0], &r, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(unlink(path), 0);
  rc = shard_reader_check(r, &err);
  expect_changed(rc, &err);
  shard_reader_close(r);
  free(bytes);
  free(copy);
  free(path);
  manifest_free(m);
  teardown();
}

static const harness_test tests[] = {
    {"test_reader_reads_every_sample_once_per_epoch_for_world_1_to_4",
     test_reader_reads_every_sample_once_per_epoch_for_world_1_to_4},
    {"test_reader_refuses_more_ranks_than_shards", test_reader_refuses_more_ranks_than_shards},
    {"test_reader_state_restore_continues_the_same_stream",
     test_reader_state_restore_continues_the_same_stream},
    {"test_reader_resumes_an_epoch_on_another_world_size",
     test_reader_resumes_an_epoch_on_another_world_size},
    {"test_reader_batch_has_bert_shapes_and_padding", test_reader_batch_has_bert_shapes_and_padding},
    {"test_reader_whole_word_masks_cover_every_piece",
     test_reader_whole_word_masks_cover_every_piece},
    {"test_reader_validation_is_fixed_and_complete", test_reader_validation_is_fixed_and_complete},
    {"test_reader_stops_when_a_shard_is_appended_to_under_it",
     test_reader_stops_when_a_shard_is_appended_to_under_it},
    {"test_reader_notices_a_shard_file_replaced_or_removed",
     test_reader_notices_a_shard_file_replaced_or_removed},
    {NULL, NULL},
};
const harness_suite corpus_reader_suite = {"reader", tests};
