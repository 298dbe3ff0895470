/* corpus/record: the byte layout documented in docs/corpus.md, round trips
 * at both id widths, and every malformed record refused. */
#include <stdlib.h>
#include <string.h>

#include "corpus/record.h"
#include "harness.h"
#include "util/status.h"

static void test_record_bytes_match_documented_layout(void) {
  const int32_t ids[] = {2, 300, 3, 7, 3};
  record rec = {.ids = ids, .n = 5, .split = 3, .pair = 1, .random_next = 1};
  uint8_t buf[32];
  CU_ASSERT_EQUAL(record_encoded_size(5, 2), 16);
  record_encode(&rec, 2, buf);
  /* version 1, flags pair|random_next, n = 5, split = 3, ids u16 LE */
  const uint8_t want[16] = {1, 0x03, 5, 0, 3, 0, 2, 0, 0x2c, 0x01, 3, 0, 7, 0, 3, 0};
  CU_ASSERT_EQUAL(memcmp(buf, want, sizeof want), 0);
  record single = {.ids = ids, .n = 3, .split = 3};
  record_encode(&single, 4, buf);
  const uint8_t want32[18] = {1, 0x04, 3, 0, 3, 0, 2, 0, 0, 0, 0x2c, 0x01, 0, 0, 3, 0, 0, 0};
  CU_ASSERT_EQUAL(record_encoded_size(3, 4), 18);
  CU_ASSERT_EQUAL(memcmp(buf, want32, sizeof want32), 0);
}

static void test_record_round_trips_at_both_widths(void) {
  int32_t ids[512], back[512];
  for (int i = 0; i < 512; i++) ids[i] = (i * 7919) % 65536;
  uint8_t buf[6 + 4 * 512];
  for (int width = 2; width <= 4; width += 2) {
    if (width == 4) ids[10] = 1000000;
    record rec = {.ids = ids, .n = 512, .split = 200, .pair = 1}, out;
    record_encode(&rec, width, buf);
    char *err = NULL;
    CU_ASSERT_EQUAL_FATAL(record_decode(buf, record_encoded_size(512, width), width, back, NULL, 512,
                                        &out, &err), ST_OK);
    CU_ASSERT_EQUAL(out.n, 512);
    CU_ASSERT_EQUAL(out.split, 200);
    CU_ASSERT(out.pair && !out.random_next);
    CU_ASSERT_EQUAL(memcmp(ids, back, sizeof ids), 0);
  }
}

static void expect_corrupt(const uint8_t *buf, size_t len, int width, size_t max_n,
                           const char *needle) {
  int32_t ids[64];
  record out;
  char *err = NULL;
  CU_ASSERT_EQUAL(record_decode(buf, len, width, ids, NULL, max_n, &out, &err), ST_CORRUPT);
  CU_ASSERT_PTR_NOT_NULL_FATAL(err);
  if (!strstr(err, needle)) fprintf(stderr, "message '%s' lacks '%s'\n", err, needle);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
  free(err);
}

static void test_record_decode_refuses_malformed_records(void) {
  const int32_t ids[] = {2, 9, 3};
  record rec = {.ids = ids, .n = 3, .split = 3};
  uint8_t good[12], bad[12];
  record_encode(&rec, 2, good);
  expect_corrupt(good, 5, 2, 64, "shorter than its");
  expect_corrupt(good, 11, 2, 64, "must be 12 bytes");
  expect_corrupt(good, 12, 4, 64, "manifest says 4");
  expect_corrupt(good, 12, 2, 2, "more than seq_len");
  memcpy(bad, good, 12);
  bad[0] = 2;
  expect_corrupt(bad, 12, 2, 64, "version 2");
  memcpy(bad, good, 12);
  bad[1] = 0x80;
  expect_corrupt(bad, 12, 2, 64, "unknown flag");
  memcpy(bad, good, 12);
  bad[4] = 1; /* split 1 without the pair flag */
  expect_corrupt(bad, 12, 2, 64, "split 1");
  memcpy(bad, good, 12);
  bad[1] = 0x02; /* random-next without pair */
  expect_corrupt(bad, 12, 2, 64, "not a pair");
}

static const harness_test tests[] = {
    {"test_record_bytes_match_documented_layout", test_record_bytes_match_documented_layout},
    {"test_record_round_trips_at_both_widths", test_record_round_trips_at_both_widths},
    {"test_record_decode_refuses_malformed_records", test_record_decode_refuses_malformed_records},
    {NULL, NULL},
};
const harness_suite corpus_record_suite = {"record", tests};
