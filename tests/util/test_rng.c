/* Philox4x32-10 against Random123's published known-answer vectors, and the
 * stream properties ddpt relies on: seekable, keyed by every field,
 * uniform and normal draws with the right moments. */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "util/rng.h"

static void test_philox_matches_random123_known_answers(void) {
  static const struct {
    uint32_t ctr[4], key[2], out[4];
  } kat[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
    uint32_t out[4];
    rng_philox4x32_10(kat[i].ctr, kat[i].key, out);
    CU_ASSERT_EQUAL(memcmp(out, kat[i].out, sizeof out), 0);
  }
}

static void test_stream_word_is_lane_of_block(void) {
  rng_stream s;
  rng_stream_init(&s, 0x299f31d0a4093822ull, 0x85a308d3, 0x13198a2e, 0x03707344);
  rng_stream_seek(&s, 4ull * 0x243f6a88 + 2);
  CU_ASSERT_EQUAL(rng_next_u32(&s), 0x5001e420u);
  CU_ASSERT_EQUAL(rng_next_u32(&s), 0x24126ea1u);
}

static void test_stream_seek_reproduces_sequential_draws(void) {
  rng_stream a, b;
  rng_stream_init(&a, 42, 1, 2, 3);
  uint32_t seq[37];
  for (int i = 0; i < 37; i++) seq[i] = rng_next_u32(&a);
  rng_stream_init(&b, 42, 1, 2, 3);
  for (int i = 36; i >= 0; i -= 5) {
    rng_stream_seek(&b, (uint64_t)i);
    CU_ASSERT_EQUAL(rng_next_u32(&b), seq[i]);
  }
}

static void test_streams_differ_in_every_field(void) {
  uint32_t base, other;
  rng_stream s;
  rng_stream_init(&s, 7, 1, 2, 3);
  base = rng_next_u32(&s);
  rng_stream_init(&s, 8, 1, 2, 3);
  other = rng_next_u32(&s);
  CU_ASSERT_NOT_EQUAL(base, other);
  rng_stream_init(&s, 7, 9, 2, 3);
  CU_ASSERT_NOT_EQUAL(base, rng_next_u32(&s));
  rng_stream_init(&s, 7, 1, 9, 3);
  CU_ASSERT_NOT_EQUAL(base, rng_next_u32(&s));
  rng_stream_init(&s, 7, 1, 2, 9);
  CU_ASSERT_NOT_EQUAL(base, rng_next_u32(&s));
}

static void test_uniform_and_normal_have_right_moments(void) {
  rng_stream s;
  rng_stream_init(&s, 1234, 0, 0, 0);
  const int n = 200000;
  double sum = 0, sumsq = 0, nsum = 0, nsumsq = 0;
  float lo = 1, hi = 0;
  for (int i = 0; i < n; i++) {
    float u = rng_next_uniform(&s);
    sum += u;
    sumsq += (double)u * u;
    if (u < lo) lo = u;
    if (u > hi) hi = u;
    double z = rng_next_normal(&s);
    nsum += z;
    nsumsq += z * z;
  }
  CU_ASSERT(lo >= 0.0f && hi < 1.0f);
  /* Standard errors: mean 0.00065, var ~0.0003; normal mean 0.0022. */
  CU_ASSERT_DOUBLE_EQUAL(sum / n, 0.5, 0.004);
  CU_ASSERT_DOUBLE_EQUAL(sumsq / n - (sum / n) * (sum / n), 1.0 / 12, 0.002);
  CU_ASSERT_DOUBLE_EQUAL(nsum / n, 0.0, 0.012);
  CU_ASSERT_DOUBLE_EQUAL(nsumsq / n, 1.0, 0.015);
}

static void test_below_stays_in_range_and_covers_it(void) {
  rng_stream s;
  rng_stream_init(&s, 99, 5, 0, 0);
  int hits[7] = {0};
  for (int i = 0; i < 70000; i++) {
    uint32_t x = rng_next_below(&s, 7);
    CU_ASSERT_FATAL(x < 7);
    hits[x]++;
  }
  for (int i = 0; i < 7; i++) CU_ASSERT(hits[i] > 9400 && hits[i] < 10600);
}

static const harness_test tests[] = {
    {"test_philox_matches_random123_known_answers", test_philox_matches_random123_known_answers},
    {"test_stream_word_is_lane_of_block", test_stream_word_is_lane_of_block},
    {"test_stream_seek_reproduces_sequential_draws", test_stream_seek_reproduces_sequential_draws},
    {"test_streams_differ_in_every_field", test_streams_differ_in_every_field},
    {"test_uniform_and_normal_have_right_moments", test_uniform_and_normal_have_right_moments},
    {"test_below_stays_in_range_and_covers_it", test_below_stays_in_range_and_covers_it},
    {NULL, NULL},
};
const harness_suite util_rng_suite = {"rng", tests};
