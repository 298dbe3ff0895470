/* Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11).
 *
 * A random word is a pure function of (key, counter): no hidden state, so any
 * position of any stream can be computed directly. ddpt keys every use by
 * what it is about, never by who computes it: masks by (seed, shard, epoch,
 * index), dropout by (seed, step, site), so results do not depend on rank,
 * world size or thread count.
 *
 * A stream is (64-bit seed, three 32-bit stream words a, b, c, position).
 * Word i of the stream is lane i%4 of philox({i/4, a, b, c}, seed). A stream
 * holds 2^34 words; the position is all the state there is.
 */
#ifndef DDPT_UTIL_RNG_H
#define DDPT_UTIL_RNG_H

#include <stdint.h>

/* The bare block function: out = Philox4x32-10(ctr, key). */
void rng_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

typedef struct rng_stream {
  uint32_t key[2];
  uint32_t words[3]; /* a, b, c: which stream */
  uint64_t pos;      /* index of the next 32-bit word */
  uint64_t block_at; /* block held in buf, or UINT64_MAX */
  uint32_t buf[4];
} rng_stream;

void rng_stream_init(rng_stream *s, uint64_t seed, uint32_t a, uint32_t b, uint32_t c);
/* Moves to word position pos; the next draw returns word pos. */
void rng_stream_seek(rng_stream *s, uint64_t pos);

uint32_t rng_next_u32(rng_stream *s);
uint64_t rng_next_u64(rng_stream *s);
/* Uniform in [0, 1) with 24 random bits (every float it returns is exact). */
float rng_next_uniform(rng_stream *s);
/* Uniform in [0, 1) with 53 random bits. */
double rng_next_uniform_double(rng_stream *s);
/* Uniform integer in [0, n), unbiased (rejection); n > 0. */
uint32_t rng_next_below(rng_stream *s, uint32_t n);
/* Standard normal (Box-Muller on two doubles; consumes four words). */
double rng_next_normal(rng_stream *s);

/* Mixes a 64-bit value into a well-spread 64-bit key (splitmix64 finaliser),
 * for deriving independent seeds for separate purposes from one user seed. */
uint64_t rng_mix64(uint64_t x);

#endif
