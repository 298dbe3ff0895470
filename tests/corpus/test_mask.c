/* corpus/masking: BERT's 15% and 80/10/10 over many samples, special tokens
 * untouched, the clamp to [1, max_predictions], whole words masked whole,
 * and masks that are a pure function of (seed, shard, epoch, index). */
#include <math.h>
#include <string.h>

#include "corpus/masking.h"
#include "harness.h"

#define VOCAB 1000
#define CLS 2
#define SEP 3
#define PAD 0
#define MASK 4
#define FIRST_CONT 500 /* ids 500..999 are "##" pieces */

static uint8_t continuation[VOCAB];

static mask_config config(int whole_word, size_t max_pred) {
  for (int i = 0; i < VOCAB; i++) continuation[i] = i >= FIRST_CONT;
  return (mask_config){0.15, max_pred, whole_word, CLS, SEP, PAD, MASK, VOCAB, continuation};
}

/* [CLS] n-2 word-start ids [SEP], ids spread over 5..499. */
static void plain_sequence(int32_t *ids, size_t n, uint32_t salt) {
  ids[0] = CLS;
  for (size_t i = 1; i + 1 < n; i++) ids[i] = 5 + (int32_t)((i * 131 + salt * 17) % 495);
  ids[n - 1] = SEP;
}

static void test_mask_rates_are_15_percent_and_80_10_10(void) {
  mask_config cfg = config(0, 1000);
  int32_t ids[128], in[128], lab[128];
  uint32_t scratch[128];
  double predicted = 0, candidates = 0, masked = 0, random = 0, kept = 0;
  const uint32_t samples = 20000;
  for (uint32_t s = 0; s < samples; s++) {
    size_t n = 20 + s % 100; /* many lengths, so rounding averages out */
    plain_sequence(ids, n, s);
    size_t got = mask_apply(&cfg, 1234, s % 7, s % 3, s, ids, n, in, lab, scratch);
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
      if (lab[i] < 0) {
        CU_ASSERT_EQUAL_FATAL(in[i], ids[i]);
        continue;
      }
      count++;
      CU_ASSERT_EQUAL_FATAL(lab[i], ids[i]);
      if (in[i] == MASK) masked++;
      else if (in[i] == ids[i]) kept++;
      else random++;
    }
    CU_ASSERT_EQUAL_FATAL(count, got);
    size_t want = (size_t)lround(0.15 * (double)(n - 2));
    CU_ASSERT_EQUAL_FATAL(got, want < 1 ? 1 : want);
    predicted += (double)got;
    candidates += (double)(n - 2);
  }
  double rate = predicted / candidates;
  CU_ASSERT(fabs(rate - 0.15) < 0.002);
  /* A random id equals the original 1 time in 1000: "kept" absorbs it. */
  CU_ASSERT(fabs(masked / predicted - 0.8) < 0.005);
  CU_ASSERT(fabs(random / predicted - 0.1 * 0.999) < 0.005);
  CU_ASSERT(fabs(kept / predicted - 0.1 * 1.001) < 0.005);
}

static void test_mask_chooses_every_position_equally_often(void) {
  mask_config cfg = config(0, 1000);
  int32_t ids[40], in[40], lab[40];
  uint32_t scratch[40];
  double count[40] = {0};
  const uint32_t samples = 20000;
  plain_sequence(ids, 40, 0);
  for (uint32_t s = 0; s < samples; s++) {
    mask_apply(&cfg, 99, 0, 0, s, ids, 40, in, lab, scratch);
    for (size_t i = 0; i < 40; i++) count[i] += lab[i] >= 0;
  }
  /* 6 of 38 candidates per sample: 3158 each on average, sd about 52. */
  double want = samples * 6.0 / 38.0;
  CU_ASSERT_EQUAL(count[0], 0);
  CU_ASSERT_EQUAL(count[39], 0);
  for (size_t i = 1; i < 39; i++) CU_ASSERT(fabs(count[i] - want) < 0.08 * want);
}

static void test_mask_never_touches_special_tokens(void) {
  mask_config cfg = config(0, 1000);
  int32_t ids[40], in[40], lab[40];
  uint32_t scratch[40];
  for (uint32_t s = 0; s < 2000; s++) {
    plain_sequence(ids, 40, s);
    ids[10] = SEP;
    ids[11] = MASK;
    for (int i = 30; i < 40; i++) ids[i] = PAD;
    mask_apply(&cfg, 9, 0, 0, s, ids, 40, in, lab, scratch);
    const int special[] = {0, 10, 11, 30, 35, 39};
    for (int k = 0; k < 6; k++) {
      CU_ASSERT_EQUAL_FATAL(lab[special[k]], -1);
      CU_ASSERT_EQUAL_FATAL(in[special[k]], ids[special[k]]);
    }
  }
}

static void test_mask_count_is_clamped_to_one_and_max_predictions(void) {
  int32_t ids[128], in[128], lab[128];
  uint32_t scratch[128];
  mask_config cfg = config(0, 5);
  plain_sequence(ids, 128, 0);
  CU_ASSERT_EQUAL(mask_apply(&cfg, 1, 0, 0, 0, ids, 128, in, lab, scratch), 5);
  plain_sequence(ids, 5, 0); /* 3 candidates: round(0.45) = 0, raised to 1 */
  CU_ASSERT_EQUAL(mask_apply(&cfg, 1, 0, 0, 0, ids, 5, in, lab, scratch), 1);
  const int32_t only_special[] = {CLS, SEP, PAD};
  CU_ASSERT_EQUAL(mask_apply(&cfg, 1, 0, 0, 0, only_special, 3, in, lab, scratch), 0);
}

static void test_mask_whole_word_masks_every_piece_of_a_word(void) {
  mask_config cfg = config(1, 20);
  int32_t ids[128], in[128], lab[128];
  uint32_t scratch[128];
  for (uint32_t s = 0; s < 3000; s++) {
    ids[0] = CLS;
    for (size_t i = 1; i < 127; i++) /* a word start every 1-3 tokens */
      ids[i] = ((i * 7 + s) % 3 == 0 || i == 1) ? 5 + (int32_t)(i % 400) : FIRST_CONT + (int32_t)i;
    ids[127] = SEP;
    size_t got = mask_apply(&cfg, 77, 1, 2, s, ids, 128, in, lab, scratch);
    CU_ASSERT_FATAL(got >= 1 && got <= 19); /* budget round(0.15*126) = 19 */
    for (size_t i = 1; i < 127;) {
      size_t end = i + 1;
      while (end < 127 && ids[end] >= FIRST_CONT) end++;
      size_t labelled = 0;
      for (size_t k = i; k < end; k++) labelled += lab[k] >= 0;
      CU_ASSERT_FATAL(labelled == 0 || labelled == end - i);
      i = end;
    }
  }
}

static void test_mask_is_a_function_of_seed_shard_epoch_index(void) {
  mask_config cfg = config(0, 20);
  int32_t ids[128], a[128], la[128], b[128], lb[128];
  uint32_t scratch[128];
  plain_sequence(ids, 128, 3);
  mask_apply(&cfg, 5, 1, 2, 3, ids, 128, a, la, scratch);
  mask_apply(&cfg, 5, 1, 2, 3, ids, 128, b, lb, scratch);
  CU_ASSERT(memcmp(a, b, sizeof a) == 0 && memcmp(la, lb, sizeof la) == 0);
  const uint32_t other[4][4] = {{6, 1, 2, 3}, {5, 0, 2, 3}, {5, 1, 3, 3}, {5, 1, 2, 4}};
  for (int k = 0; k < 4; k++) {
    mask_apply(&cfg, other[k][0], other[k][1], other[k][2], other[k][3], ids, 128, b, lb, scratch);
    CU_ASSERT(memcmp(la, lb, sizeof la) != 0);
  }
}

static const harness_test tests[] = {
    {"test_mask_rates_are_15_percent_and_80_10_10", test_mask_rates_are_15_percent_and_80_10_10},
    {"test_mask_chooses_every_position_equally_often",
     test_mask_chooses_every_position_equally_often},
    {"test_mask_never_touches_special_tokens", test_mask_never_touches_special_tokens},
    {"test_mask_count_is_clamped_to_one_and_max_predictions",
     test_mask_count_is_clamped_to_one_and_max_predictions},
    {"test_mask_whole_word_masks_every_piece_of_a_word",
     test_mask_whole_word_masks_every_piece_of_a_word},
    {"test_mask_is_a_function_of_seed_shard_epoch_index",
     test_mask_is_a_function_of_seed_shard_epoch_index},
    {NULL, NULL},
};
const harness_suite corpus_mask_suite = {"mask", tests};
