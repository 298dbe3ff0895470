/* CRC32C (Castagnoli, reflected polynomial 0x82f63b78), the checksum of
 * LevelDB tables and TensorFlow tensor bundles, and the "mask" both apply to
 * a CRC they store next to data that may itself hold CRCs.
 *
 * Conventions:
 *  1. crc32c_extend(0, ...) is the CRC of the bytes; extending a CRC with
 *     more bytes equals the CRC of the concatenation.
 *  2. The SSE4.2 crc32 instruction is used where the CPU has it (checked
 *     once, at the first call); elsewhere slicing-by-8 tables. Both give the
 *     same values (the unit test compares them).
 *  3. Thread-safe: no state beyond tables built once.
 */
#ifndef DDPT_UTIL_CRC32C_H
#define DDPT_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC of crc's bytes followed by data[0..n). */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t n);

/* crc32c_extend without the hardware path: the reference the fast path is
 * tested against. */
uint32_t crc32c_extend_portable(uint32_t crc, const void *data, size_t n);

static inline uint32_t crc32c(const void *data, size_t n) { return crc32c_extend(0, data, n); }

/* LevelDB's mask: a CRC stored next to data is rotated and offset, so that
 * the CRC of a string that contains embedded CRCs is not degenerate. */
#define CRC32C_MASK_DELTA 0xa282ead8u
static inline uint32_t crc32c_mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + CRC32C_MASK_DELTA;
}
static inline uint32_t crc32c_unmask(uint32_t masked) {
  uint32_t rot = masked - CRC32C_MASK_DELTA;
  return (rot >> 17) | (rot << 15);
}

#endif
