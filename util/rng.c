/* Philox4x32-10 and the streams built on it (see rng.h). Constants are those
 * of the Random123 reference; tests/util checks its known-answer vectors. */
#include "util/rng.h"

#include <assert.h>
#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void rng_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
    uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

void rng_stream_init(rng_stream *s, uint64_t seed, uint32_t a, uint32_t b, uint32_t c) {
  s->key[0] = (uint32_t)seed;
  s->key[1] = (uint32_t)(seed >> 32);
  s->words[0] = a;
  s->words[1] = b;
  s->words[2] = c;
  s->pos = 0;
  s->block_at = UINT64_MAX;
}

void rng_stream_seek(rng_stream *s, uint64_t pos) { s->pos = pos; }

uint32_t rng_next_u32(rng_stream *s) {
  uint64_t block = s->pos >> 2;
  assert(block <= UINT32_MAX && "rng stream exhausted (2^34 words)");
  if (block != s->block_at) {
    const uint32_t ctr[4] = {(uint32_t)block, s->words[0], s->words[1], s->words[2]};
    rng_philox4x32_10(ctr, s->key, s->buf);
    s->block_at = block;
  }
  return s->buf[s->pos++ & 3];
}

uint64_t rng_next_u64(rng_stream *s) {
  uint64_t lo = rng_next_u32(s);
  uint64_t hi = rng_next_u32(s);
  return lo | (hi << 32);
}

float rng_next_uniform(rng_stream *s) {
  return (float)(rng_next_u32(s) >> 8) * (1.0f / 16777216.0f);
}

double rng_next_uniform_double(rng_stream *s) {
  return (double)(rng_next_u64(s) >> 11) * (1.0 / 9007199254740992.0);
}

uint32_t rng_next_below(rng_stream *s, uint32_t n) {
  assert(n > 0);
  /* Reject the top partial range so that every residue is equally likely. */
  uint32_t limit = UINT32_MAX - (UINT32_MAX % n);
  uint32_t x;
  do x = rng_next_u32(s);
  while (x >= limit);
  return x % n;
}

double rng_next_normal(rng_stream *s) {
  double u1 = 1.0 - rng_next_uniform_double(s); /* (0, 1]: log is finite */
  double u2 = rng_next_uniform_double(s);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

uint64_t rng_mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
