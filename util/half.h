/* 16-bit floats: IEEE binary16 (F16, "half") and bfloat16 (BF16, a float's
 * top half), to and from float32. Widening is exact (every F16 and BF16 is a
 * float); narrowing rounds to nearest, ties to even, and keeps NaN a NaN.
 * Used by the safetensors and TensorFlow readers and the safetensors
 * writer. */
#ifndef DDPT_UTIL_HALF_H
#define DDPT_UTIL_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t half_f32_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static inline float half_f32_from_bits(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

static inline float half_bf16_to_f32(uint16_t h) { return half_f32_from_bits((uint32_t)h << 16); }

/* Infinities and NaN payloads carry over; subnormals m * 2^-24 are exact. */
static inline float half_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f) return half_f32_from_bits(sign | 0x7f800000u | m << 13);
  if (e) return half_f32_from_bits(sign | (e + 112) << 23 | m << 13);
  float f = (float)m * 0x1p-24f;
  return sign ? -f : f;
}

static inline uint16_t half_f32_to_bf16(float x) {
  uint32_t u = half_f32_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(u >> 16 | 0x40u); /* quiet: stays NaN */
  return (uint16_t)((u + 0x7fffu + (u >> 16 & 1u)) >> 16);                 /* nearest, ties to even */
}

/* Round to nearest even into *out; 0 when x is finite but rounds beyond
 * 65504 (F16 has no room for it), 1 otherwise. */
int half_f32_to_f16(float x, uint16_t *out);

#endif
