/* corpus/record, labelled records: the class label and tags follow the ids
 * as documented (int16 LE, -100 for an ignored position), round trip, and
 * malformed ones (flags together, lengths, negative labels) are refused. */
#include <stdlib.h>
#include <string.h>

#include "corpus/record.h"
#include "harness.h"
#include "util/status.h"

static void test_labelled_records_match_documented_layout_and_round_trip(void) {
  const int32_t ids[] = {2, 300, 3, 7, 3};
  const int32_t tags[] = {RECORD_IGNORE_LABEL, 4, RECORD_IGNORE_LABEL, 0, RECORD_IGNORE_LABEL};
  record cls = {.ids = ids, .n = 5, .split = 3, .pair = 1, .kind = RECORD_CLASS, .label = 258};
  record tag = {.ids = ids, .n = 5, .split = 5, .kind = RECORD_TAGS, .tags = tags};
  uint8_t buf[64];
  CU_ASSERT_EQUAL(record_labels_size(RECORD_CLASS, 5), 2);
  CU_ASSERT_EQUAL(record_labels_size(RECORD_TAGS, 5), 10);
  CU_ASSERT_EQUAL(record_labels_size(RECORD_PLAIN, 5), 0);
  record_encode(&cls, 2, buf);
  const uint8_t want_cls[18] = {1, 0x09, 5, 0, 3, 0, 2, 0, 0x2c, 1, 3, 0, 7, 0, 3, 0, 2, 1};
  CU_ASSERT_EQUAL(memcmp(buf, want_cls, sizeof want_cls), 0);
  int32_t back[8], back_tags[8];
  record out;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(record_decode(buf, 18, 2, back, back_tags, 8, &out, &err), ST_OK);
  CU_ASSERT(out.kind == RECORD_CLASS && out.label == 258 && out.pair && out.split == 3);
  record_encode(&tag, 4, buf);
  const uint8_t want_tags[10] = {0x9c, 0xff, 4, 0, 0x9c, 0xff, 0, 0, 0x9c, 0xff}; /* -100 = ff9c */
  CU_ASSERT_EQUAL(buf[1], 0x14);
  CU_ASSERT_EQUAL(memcmp(buf + 6 + 5 * 4, want_tags, sizeof want_tags), 0);
  CU_ASSERT_EQUAL_FATAL(record_decode(buf, 36, 4, back, back_tags, 8, &out, &err), ST_OK);
  CU_ASSERT(out.kind == RECORD_TAGS && out.tags == back_tags && !out.pair);
  CU_ASSERT_EQUAL(memcmp(back_tags, tags, sizeof tags), 0);
  CU_ASSERT_EQUAL(memcmp(back, ids, sizeof ids), 0);
}

static void expect_corrupt(const uint8_t *buf, size_t len, const char *needle) {
  int32_t ids[8], tags[8];
  record out;
  char *err = NULL;
  CU_ASSERT_EQUAL(record_decode(buf, len, 2, ids, tags, 8, &out, &err), ST_CORRUPT);
  CU_ASSERT_PTR_NOT_NULL_FATAL(err);
  if (!strstr(err, needle)) fprintf(stderr, "message '%s' lacks '%s'\n", err, needle);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
  free(err);
}

static void test_labelled_record_decode_refuses_malformed_records(void) {
  const int32_t ids[] = {2, 9, 3};
  record rec = {.ids = ids, .n = 3, .split = 3, .kind = RECORD_CLASS, .label = 1};
  uint8_t good[14], bad[18]; /* 6 + 3 x 2 bytes of ids + a 2-byte label */
  record_encode(&rec, 2, good);
  memcpy(bad, good, 14);
  bad[1] |= 0x10;
  expect_corrupt(bad, 14, "combine a class label with tags");
  memcpy(bad, good, 14);
  bad[1] = 0x13; /* pair, random next, tags */
  expect_corrupt(bad, 18, "combine tags with a random next");
  expect_corrupt(good, 12, "must be 14 bytes");
  memcpy(bad, good, 14);
  bad[12] = 0xfe; /* -2 */
  bad[13] = 0xff;
  expect_corrupt(bad, 14, "class label -2 is negative");
  const int32_t tags[] = {RECORD_IGNORE_LABEL, 0, RECORD_IGNORE_LABEL};
  record t = {.ids = ids, .n = 3, .split = 3, .kind = RECORD_TAGS, .tags = tags};
  record_encode(&t, 2, bad);
  bad[14] = 0xff; /* -1 at position 1 */
  bad[15] = 0xff;
  expect_corrupt(bad, 18, "tag -1 at position 1 is negative and not -100");
  /* Found by tests/fuzz/fuzz_record.c: int16 holds 32767, which no label id
   * reaches (at most 32767 labels: ids 0..32766); decoded, it could not be
   * encoded back (record_encode asserts). */
  bad[14] = 0xff; /* 32767 at position 1 */
  bad[15] = 0x7f;
  expect_corrupt(bad, 18, "tag 32767 at position 1 is not below 32767");
  memcpy(bad, good, 14);
  bad[12] = 0xff;
  bad[13] = 0x7f;
  expect_corrupt(bad, 14, "class label 32767 is not below 32767");
}

static const harness_test tests[] = {
    {"test_labelled_records_match_documented_layout_and_round_trip",
     test_labelled_records_match_documented_layout_and_round_trip},
    {"test_labelled_record_decode_refuses_malformed_records",
     test_labelled_record_decode_refuses_malformed_records},
    {NULL, NULL},
};
const harness_suite corpus_record_labels_suite = {"record_labels", tests};
