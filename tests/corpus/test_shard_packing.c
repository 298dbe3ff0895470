/* corpus/packing: full-sentence packing against hand-packed sequences, and
 * BERT NSP pairs: shape, segments, actual next from the same document in
 * order, random next from another, about half of them random. */
#include <stdlib.h>
#include <string.h>

#include "corpus/packing.h"
#include "harness.h"
#include "util/status.h"

#define CLS 2
#define SEP 3

typedef struct collected {
  int32_t ids[64][512];
  size_t n[64], split[64];
  size_t count;
} collected;

typedef struct pair_stats {
  size_t count, random, bad, seq_len;
  uint64_t checksum;
} pair_stats;

static int collect(void *ctx, const record *rec, char **err) {
  (void)err;
  collected *c = ctx;
  CU_ASSERT_FATAL(c->count < 64);
  memcpy(c->ids[c->count], rec->ids, rec->n * sizeof *rec->ids);
  c->n[c->count] = rec->n;
  c->split[c->count] = rec->split;
  c->count++;
  return ST_OK;
}

static void test_packing_full_sentences_matches_hand_packed(void) {
  pack_config cfg = {.seq_len = 8, .cls_id = CLS, .sep_id = SEP};
  collected *c = calloc(1, sizeof *c);
  packer *p = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(packer_create(&cfg, collect, c, &p, &err), ST_OK);
  const int32_t d0[] = {10, 11, 12, 13, 14};
  const size_t d0_ends[] = {3, 3, 5}; /* the empty middle sentence is skipped */
  const int32_t d1[] = {20, 21, 22, 23, 24, 25, 26, 27};
  const size_t d1_ends[] = {8};
  const int32_t d2[] = {30};
  const size_t d2_ends[] = {1};
  CU_ASSERT_EQUAL(packer_add_document(p, d0, d0_ends, 3, &err), ST_OK);
  CU_ASSERT_EQUAL(packer_add_document(p, d1, d1_ends, 1, &err), ST_OK);
  CU_ASSERT_EQUAL(packer_add_document(p, d1, d1_ends, 0, &err), ST_OK); /* empty document */
  CU_ASSERT_EQUAL(packer_add_document(p, d2, d2_ends, 1, &err), ST_OK);
  CU_ASSERT_EQUAL(packer_finish(p, &err), ST_OK);
  CU_ASSERT_EQUAL(packer_documents(p), 3);
  /* Room is 6 tokens between [CLS] and [SEP]; a document that follows
   * another in the same sequence is set off by [SEP]; an 8-token sentence
   * is split at 6. */
  const int32_t want0[] = {CLS, 10, 11, 12, 13, 14, SEP};
  const int32_t want1[] = {CLS, 20, 21, 22, 23, 24, 25, SEP};
  const int32_t want2[] = {CLS, 26, 27, SEP, 30, SEP};
  CU_ASSERT_EQUAL_FATAL(c->count, 3);
  CU_ASSERT(c->n[0] == 7 && memcmp(c->ids[0], want0, sizeof want0) == 0);
  CU_ASSERT(c->n[1] == 8 && memcmp(c->ids[1], want1, sizeof want1) == 0);
  CU_ASSERT(c->n[2] == 6 && memcmp(c->ids[2], want2, sizeof want2) == 0);
  for (size_t i = 0; i < 3; i++) CU_ASSERT_EQUAL(c->split[i], c->n[i]);
  packer_free(p);
  free(c);
}

/* Token t of document d is 100000 + 1000 d + t: its origin can be read back. */
#define DOC_OF(id) (((id) - 100000) / 1000)
#define POS_OF(id) (((id) - 100000) % 1000)

static int check_pair(void *ctx, const record *rec, char **err) {
  (void)err;
  pair_stats *s = ctx;
  const int32_t *x = rec->ids;
  size_t n = rec->n, sp = rec->split;
  int ok = rec->pair && n <= s->seq_len && sp >= 3 && sp + 2 <= n && x[0] == CLS &&
           x[sp - 1] == SEP && x[n - 1] == SEP;
  /* Each segment is a contiguous run of one document. */
  for (size_t i = 2; ok && i < sp - 1; i++) ok = x[i] == x[i - 1] + 1;
  for (size_t i = sp + 1; ok && i < n - 1; i++) ok = x[i] == x[i - 1] + 1;
  if (ok && !rec->random_next)
    ok = DOC_OF(x[1]) == DOC_OF(x[sp]) && POS_OF(x[sp]) > POS_OF(x[sp - 2]);
  if (ok && rec->random_next) ok = DOC_OF(x[1]) != DOC_OF(x[sp]);
  s->bad += !ok;
  s->count++;
  s->random += rec->random_next;
  for (size_t i = 0; i < n; i++) s->checksum = s->checksum * 31 + (uint64_t)x[i];
  return ST_OK;
}

static pair_stats pack_pairs(uint64_t seed) {
  pair_stats s = {.seq_len = 64};
  pack_config cfg = {.seq_len = 64, .nsp = 1, .seed = seed, .short_seq_prob = 0.1,
                     .window_docs = 10, .cls_id = CLS, .sep_id = SEP};
  packer *p = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(packer_create(&cfg, check_pair, &s, &p, &err), ST_OK);
  int32_t ids[1000];
  size_t ends[100];
  for (int d = 0; d < 300; d++) {
    size_t nsent = 3 + (size_t)(d % 9), t = 0;
    for (size_t k = 0; k < nsent; k++) {
      size_t len = 4 + (size_t)((d * 7 + (int)k * 5) % 23);
      for (size_t j = 0; j < len; j++, t++) ids[t] = 100000 + 1000 * d + (int32_t)t;
      ends[k] = t;
    }
    CU_ASSERT_EQUAL_FATAL(packer_add_document(p, ids, ends, nsent, &err), ST_OK);
  }
  CU_ASSERT_EQUAL(packer_finish(p, &err), ST_OK);
  packer_free(p);
  return s;
}

static void test_packing_nsp_pairs_follow_bert(void) {
  pair_stats s = pack_pairs(1);
  CU_ASSERT(s.count > 300);
  CU_ASSERT_EQUAL(s.bad, 0);
  /* B is random half of the time, and always when the chunk holds a single
   * sentence (as in BERT), so a little over half of all pairs. */
  double share = (double)s.random / (double)s.count;
  CU_ASSERT(share > 0.5 && share < 0.7);
}

static void test_packing_nsp_is_deterministic_per_seed(void) {
  pair_stats a = pack_pairs(1), b = pack_pairs(1), c = pack_pairs(2);
  CU_ASSERT_EQUAL(a.checksum, b.checksum);
  CU_ASSERT_NOT_EQUAL(a.checksum, c.checksum);
}

static const harness_test tests[] = {
    {"test_packing_full_sentences_matches_hand_packed",
     test_packing_full_sentences_matches_hand_packed},
    {"test_packing_nsp_pairs_follow_bert", test_packing_nsp_pairs_follow_bert},
    {"test_packing_nsp_is_deterministic_per_seed", test_packing_nsp_is_deterministic_per_seed},
    {NULL, NULL},
};
const harness_suite corpus_packing_suite = {"packing", tests};
