/* CRC32C: the check value, RFC 3720 B.4's vectors (LevelDB's crc32c_test),
 * extension, LevelDB's mask, and the hardware path against the tables. */
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "util/crc32c.h"

static void test_crc32c_matches_check_value_and_rfc3720_vectors(void) {
  CU_ASSERT_EQUAL(crc32c("123456789", 9), 0xe3069283u);
  CU_ASSERT_EQUAL(crc32c("", 0), 0u);
  uint8_t buf[32];
  memset(buf, 0, sizeof buf);
  CU_ASSERT_EQUAL(crc32c(buf, sizeof buf), 0x8a9136aau);
  memset(buf, 0xff, sizeof buf);
  CU_ASSERT_EQUAL(crc32c(buf, sizeof buf), 0x62a8ab43u);
  for (int i = 0; i < 32; i++) buf[i] = (uint8_t)i;
  CU_ASSERT_EQUAL(crc32c(buf, sizeof buf), 0x46dd794eu);
  for (int i = 0; i < 32; i++) buf[i] = (uint8_t)(31 - i);
  CU_ASSERT_EQUAL(crc32c(buf, sizeof buf), 0x113fdb5cu);
  static const uint8_t iscsi_read[48] = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
      0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  CU_ASSERT_EQUAL(crc32c(iscsi_read, sizeof iscsi_read), 0xd9963a56u);
  CU_ASSERT_EQUAL(crc32c_extend_portable(0, iscsi_read, sizeof iscsi_read), 0xd9963a56u);
  CU_ASSERT_NOT_EQUAL(crc32c("a", 1), crc32c("foo", 3));
}

static void test_crc32c_extend_equals_crc_of_concatenation(void) {
  CU_ASSERT_EQUAL(crc32c_extend(crc32c("hello ", 6), "world", 5), crc32c("hello world", 11));
}

static void test_crc32c_mask_is_not_identity_and_unmask_inverts_it(void) {
  uint32_t crc = crc32c("foo", 3);
  CU_ASSERT_NOT_EQUAL(crc32c_mask(crc), crc);
  CU_ASSERT_NOT_EQUAL(crc32c_mask(crc32c_mask(crc)), crc);
  CU_ASSERT_EQUAL(crc32c_unmask(crc32c_mask(crc)), crc);
  CU_ASSERT_EQUAL(crc32c_unmask(crc32c_unmask(crc32c_mask(crc32c_mask(crc)))), crc);
  /* LevelDB's definition, written out: rotate right by 15, add the delta. */
  CU_ASSERT_EQUAL(crc32c_mask(0x12345678u), (((0x12345678u >> 15) | (0x12345678u << 17)) + 0xa282ead8u));
}

/* Every length 0..300 at every alignment 0..7, so the fast path's aligned
 * head, 8-byte body and tail all meet the tables' answer. */
static void test_crc32c_fast_path_equals_tables_at_every_alignment(void) {
  uint8_t buf[320];
  uint64_t x = 0x9e3779b97f4a7c15u;
  for (size_t i = 0; i < sizeof buf; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    buf[i] = (uint8_t)x;
  }
  int mismatches = 0;
  for (size_t align = 0; align < 8; align++)
    for (size_t n = 0; n + align <= 308; n++)
      if (crc32c_extend(0x5a5a5a5au, buf + align, n) != crc32c_extend_portable(0x5a5a5a5au, buf + align, n))
        mismatches++;
  CU_ASSERT_EQUAL(mismatches, 0);
}

static const harness_test tests[] = {
    {"crc32c_matches_check_value_and_rfc3720_vectors", test_crc32c_matches_check_value_and_rfc3720_vectors},
    {"crc32c_extend_equals_crc_of_concatenation", test_crc32c_extend_equals_crc_of_concatenation},
    {"crc32c_mask_is_not_identity_and_unmask_inverts_it", test_crc32c_mask_is_not_identity_and_unmask_inverts_it},
    {"crc32c_fast_path_equals_tables_at_every_alignment", test_crc32c_fast_path_equals_tables_at_every_alignment},
    {NULL, NULL}};

const harness_suite util_crc32c_suite = {"util_crc32c", tests};
