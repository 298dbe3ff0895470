/* Overflow-checked size arithmetic, for sizes that come from files, configs
 * or the command line (shapes read from a checkpoint, batch x seq_len x
 * hidden): a product that does not fit is refused, never wrapped. */
#ifndef DDPT_UTIL_SIZE_H
#define DDPT_UTIL_SIZE_H

#include <stddef.h>

/* *out = a * b; 0 (and *out unchanged) when it does not fit in size_t. */
static inline int size_mul_ok(size_t a, size_t b, size_t *out) {
  size_t r;
  if (__builtin_mul_overflow(a, b, &r)) return 0;
  *out = r;
  return 1;
}

/* *out = a + b; 0 (and *out unchanged) when it does not fit in size_t. */
static inline int size_add_ok(size_t a, size_t b, size_t *out) {
  size_t r;
  if (__builtin_add_overflow(a, b, &r)) return 0;
  *out = r;
  return 1;
}

#endif
