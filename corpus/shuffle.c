/* A balanced 4-round Feistel network on the smallest even number of bits
 * that covers n, walked in cycles until the value falls below n: a
 * bijection on 0..n-1 for any n. Round functions are Philox4x32-10 blocks. */
#include "corpus/shuffle.h"

#include <assert.h>

#include "util/rng.h"

#define SHUFFLE_ROUNDS 4
/* Separates the shuffle's Philox key from the masks' (both derive from the
 * user's seed). */
#define SHUFFLE_SEED_TAG 0x73687566666c6531ull /* "shuffle1" */

void shuffle_perm_init(shuffle_perm *p, uint64_t n, uint64_t seed, uint32_t shard, uint32_t epoch) {
  assert(n >= 1 && n < (1ull << 62));
  unsigned bits = 2;
  while (bits < 62 && (1ull << bits) < n) bits++;
  if (bits & 1) bits++;
  p->n = n;
  p->half_bits = bits / 2;
  p->half_mask = (1ull << p->half_bits) - 1;
  uint64_t k = rng_mix64(seed ^ SHUFFLE_SEED_TAG);
  p->key[0] = (uint32_t)k;
  p->key[1] = (uint32_t)(k >> 32);
  p->shard = shard;
  p->epoch = epoch;
}

static uint64_t round_fn(const shuffle_perm *p, uint32_t round, uint64_t x) {
  const uint32_t ctr[4] = {(uint32_t)x, (uint32_t)(x >> 32) ^ (round << 24), p->shard, p->epoch};
  uint32_t out[4];
  rng_philox4x32_10(ctr, p->key, out);
  return ((uint64_t)out[1] << 32 | out[0]) & p->half_mask;
}

static uint64_t feistel(const shuffle_perm *p, uint64_t x) {
  uint64_t left = x >> p->half_bits, right = x & p->half_mask;
  for (uint32_t r = 0; r < SHUFFLE_ROUNDS; r++) {
    uint64_t next = left ^ round_fn(p, r, right);
    left = right;
    right = next;
  }
  return left << p->half_bits | right;
}

uint64_t shuffle_perm_at(const shuffle_perm *p, uint64_t k) {
  assert(k < p->n);
  /* The network permutes 0..4^half_bits-1 (< 4n); following the cycle from
   * k until it lands below n stays a bijection on 0..n-1. */
  uint64_t x = k;
  do x = feistel(p, x);
  while (x >= p->n);
  return x;
}
