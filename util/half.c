/* float32 to binary16 with round to nearest even (half.h). */
#include "util/half.h"

int half_f32_to_f16(float x, uint16_t *out) {
  uint32_t u = half_f32_bits(x), a = u & 0x7fffffffu, e = a >> 23;
  uint16_t sign = (uint16_t)(u >> 16 & 0x8000u);
  if (a > 0x7f800000u) {
    *out = sign | 0x7e00u | (uint16_t)(a >> 13 & 0x1ffu); /* quiet NaN */
  } else if (a == 0x7f800000u) {
    *out = sign | 0x7c00u;
  } else if (a >= 0x477ff000u) { /* 65520: the midpoint above 65504 rounds to even, i.e. up */
    return 0;
  } else if (a <= 0x33000000u) { /* up to 2^-25, half the smallest subnormal: ties to 0 */
    *out = sign;
  } else if (e < 113) { /* F16 subnormal: m * 2^-24 */
    uint32_t m = (a & 0x7fffffu) | 0x800000u, shift = 126 - e;
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) r++;
    *out = sign | (uint16_t)r; /* r = 0x400 is the smallest normal, as it should be */
  } else {
    uint32_t h = (e - 112) << 10 | (a & 0x7fffffu) >> 13, rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* a carry moves into the exponent */
    *out = sign | (uint16_t)h;
  }
  return 1;
}
