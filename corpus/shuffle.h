/* The order in which a shard is read in one epoch: a seeded bijection over
 * 0..n-1, keyed by (seed, shard, epoch). Position k maps to an index
 * directly, so no index array is held and any position can be resumed. */
#ifndef DDPT_CORPUS_SHUFFLE_H
#define DDPT_CORPUS_SHUFFLE_H

#include <stdint.h>

typedef struct shuffle_perm {
  uint64_t n;
  unsigned half_bits; /* the Feistel network works on 2 * half_bits bits */
  uint64_t half_mask;
  uint32_t key[2];
  uint32_t shard, epoch;
} shuffle_perm;

/* A permutation of 0..n-1 (n >= 1, n < 2^62). */
void shuffle_perm_init(shuffle_perm *p, uint64_t n, uint64_t seed, uint32_t shard, uint32_t epoch);

/* The index read at position k (k < n). Distinct k give distinct indices. */
uint64_t shuffle_perm_at(const shuffle_perm *p, uint64_t k);

#endif
