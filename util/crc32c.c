/* CRC32C: the SSE4.2 crc32 instruction where the CPU has it, slicing-by-8
 * tables elsewhere (see crc32c.h). */
#include "util/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CRC32C_HAVE_SSE42_PATH 1
#endif

#define CRC32C_POLY 0x82f63b78u /* Castagnoli, bit-reflected */

static uint32_t crc32c_table[8][256];
static int crc32c_use_sse42;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

/* table[0] is the byte-at-a-time table; table[k][b] is the CRC of byte b
 * followed by k zero bytes, which lets the loop fold 8 bytes at once. */
static void crc32c_init(void) {
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = b;
    for (int i = 0; i < 8; i++) c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
    crc32c_table[0][b] = c;
  }
  for (int k = 1; k < 8; k++)
    for (int b = 0; b < 256; b++) {
      uint32_t prev = crc32c_table[k - 1][b];
      crc32c_table[k][b] = (prev >> 8) ^ crc32c_table[0][prev & 0xffu];
    }
#ifdef CRC32C_HAVE_SSE42_PATH
  __builtin_cpu_init();
  crc32c_use_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static inline uint32_t load_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t crc32c_slicing8(uint32_t crc, const uint8_t *p, size_t n) {
  const uint32_t(*t)[256] = crc32c_table;
  uint32_t c = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint32_t lo = c ^ load_le32(p), hi = load_le32(p + 4);
    c = t[7][lo & 0xffu] ^ t[6][(lo >> 8) & 0xffu] ^ t[5][(lo >> 16) & 0xffu] ^ t[4][lo >> 24] ^
        t[3][hi & 0xffu] ^ t[2][(hi >> 8) & 0xffu] ^ t[1][(hi >> 16) & 0xffu] ^ t[0][hi >> 24];
  }
  for (; n > 0; p++, n--) c = t[0][(c ^ *p) & 0xffu] ^ (c >> 8);
  return ~c;
}

#ifdef CRC32C_HAVE_SSE42_PATH
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n) {
  uint64_t c = ~crc;
  for (; n > 0 && ((uintptr_t)p & 7u) != 0; p++, n--) c = _mm_crc32_u8((uint32_t)c, *p);
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  for (; n > 0; p++, n--) c = _mm_crc32_u8((uint32_t)c, *p);
  return ~(uint32_t)c;
}
#endif

uint32_t crc32c_extend_portable(uint32_t crc, const void *data, size_t n) {
  pthread_once(&crc32c_once, crc32c_init);
  return crc32c_slicing8(crc, data, n);
}

uint32_t crc32c_extend(uint32_t crc, const void *data, size_t n) {
  pthread_once(&crc32c_once, crc32c_init);
#ifdef CRC32C_HAVE_SSE42_PATH
  if (crc32c_use_sse42) return crc32c_sse42(crc, data, n);
#endif
  return crc32c_slicing8(crc, data, n);
}
