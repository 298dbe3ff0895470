/* comm/: world set-up and the ordered collectives. These tests run as a
 * world of one (plain ctest) and again under mpirun with 2, 3 and 4 ranks
 * (tests/comm_mpi.cmake; 2 and 3 ranks in the sanitizer build as well);
 * every expected value is computed from a formula of the rank, so each rank
 * knows what every other rank contributed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/comm.h"
#include "harness.h"
#include "util/status.h"

static int expected_world(void) {
  const char *w = getenv("OMPI_COMM_WORLD_SIZE");
  return w ? atoi(w) : 1;
}

static void test_world_matches_launcher_or_is_one(void) {
  CU_ASSERT_EQUAL(comm_world_size(), expected_world());
  CU_ASSERT(comm_rank() >= 0 && comm_rank() < comm_world_size());
}

static void test_library_version_names_open_mpi_and_standard(void) {
  char v[256];
  comm_library_version(v, sizeof v);
  CU_ASSERT_PTR_NOT_NULL(strstr(v, "Open MPI v"));
  CU_ASSERT_PTR_NOT_NULL(strstr(v, "(MPI 3."));
}

/* Rank r contributes a value whose rounding depends on the order of
 * addition; the result must equal the rank-order sum bit for bit. */
static double contribution(int r, int i) { return (r == 0 ? 1e16 : 1.0) + 0.1 * r + i; }

static void test_sum_is_added_in_rank_order_on_every_rank(void) {
  double vals[3];
  for (int i = 0; i < 3; i++) vals[i] = contribution(comm_rank(), i);
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(comm_allreduce_sum_f64(vals, 3, &err), ST_OK);
  for (int i = 0; i < 3; i++) {
    double want = contribution(0, i);
    for (int r = 1; r < comm_world_size(); r++) want += contribution(r, i);
    CU_ASSERT(vals[i] == want);
  }
}

static void test_max_is_global(void) {
  double v = 3.0 * comm_rank() - 1.0;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(comm_allreduce_max_f64(&v, 1, &err), ST_OK);
  CU_ASSERT(v == 3.0 * (comm_world_size() - 1) - 1.0);
}

static void test_broadcast_copies_root_bytes(void) {
  int root = comm_world_size() - 1;
  char buf[100];
  for (int i = 0; i < 100; i++) buf[i] = (char)(comm_rank() == root ? i * 7 : -1);
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(comm_broadcast(buf, sizeof buf, root, &err), ST_OK);
  for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(buf[i], (char)(i * 7));
}

static void test_digest_mismatch_names_the_differing_rank(void) {
  uint8_t d[32] = {1, 2, 3};
  char *err = NULL;
  CU_ASSERT_EQUAL(comm_check_same_digest(d, "config", &err), ST_OK);
  CU_ASSERT_PTR_NULL(err);
  if (comm_world_size() == 1) {
    /* No second rank to differ: the mismatch is checked under mpirun
     * (tests/comm_mpi.cmake, in the sanitizer pass as well). */
    printf(" (world of one: checked only that a digest agrees with itself) ");
    return;
  }
  int odd = comm_world_size() - 1;
  if (comm_rank() == odd) d[31] = 9;
  CU_ASSERT_EQUAL(comm_check_same_digest(d, "config", &err), ST_MISMATCH);
  char want[64];
  snprintf(want, sizeof want, "rank %d", odd);
  CU_ASSERT(err && strstr(err, want));
  CU_ASSERT(err && strstr(err, "config differs"));
  free(err);
}

/* Small integers are exact in float: the bucketed sum must be exact too,
 * whatever the bucket boundaries and however backward reports progress. */
static void test_reducer_sums_every_bucket_exactly(void) {
  const size_t n = 1000;
  const size_t buckets[] = {1, 64, 333, 1000, 4096};
  int world = comm_world_size(), rank = comm_rank();
  float *g = malloc(n * sizeof *g);
  for (size_t b = 0; b < sizeof buckets / sizeof buckets[0]; b++) {
    for (size_t i = 0; i < n; i++) g[i] = (float)((i % 97) + 3 * rank);
    comm_reducer *r = NULL;
    char *err = NULL;
    CU_ASSERT_EQUAL_FATAL(comm_reducer_create(g, n, buckets[b], 1, &r, &err), ST_OK);
    comm_reducer_begin(r);
    for (size_t lo = n; lo > 0; lo = lo > 150 ? lo - 150 : 0) {
      CU_ASSERT_EQUAL(comm_reducer_ready(r, lo, &err), ST_OK);
      CU_ASSERT_EQUAL(comm_reducer_poll(r, &err), ST_OK);
    }
    CU_ASSERT_EQUAL(comm_reducer_finish(r, 0.5f, &err), ST_OK);
    comm_reducer_stats st = comm_reducer_get_stats(r);
    CU_ASSERT_EQUAL(st.buckets, (n + buckets[b] - 1) / buckets[b]);
    CU_ASSERT_EQUAL(st.bytes, n * sizeof(float));
    int exact = 1;
    for (size_t i = 0; i < n; i++) {
      float want = 0.5f * (float)((i % 97) * world + 3 * world * (world - 1) / 2);
      if (g[i] != want) exact = 0;
    }
    CU_ASSERT(exact);
    comm_reducer_free(r);
  }
  free(g);
}

/* With values whose sum rounds, every rank must still hold the same bits:
 * compare digests of the result across ranks. */
static void test_reducer_result_is_identical_on_every_rank(void) {
  const size_t n = 4099;
  float *g = malloc(n * sizeof *g);
  for (size_t i = 0; i < n; i++) g[i] = sinf((float)i * 0.37f + (float)comm_rank()) * 1e-3f;
  comm_reducer *r = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(comm_reducer_create(g, n, 500, 1, &r, &err), ST_OK);
  comm_reducer_begin(r);
  CU_ASSERT_EQUAL(comm_reducer_finish(r, 1.0f, &err), ST_OK);
  uint8_t d[32] = {0};
  /* A cheap position-sensitive digest is enough: any differing bit in any
   * float changes it with overwhelming probability. */
  uint64_t h = 1469598103934665603ull;
  const unsigned char *p = (const unsigned char *)g;
  for (size_t i = 0; i < n * sizeof *g; i++) h = (h ^ p[i]) * 1099511628211ull;
  memcpy(d, &h, sizeof h);
  CU_ASSERT_EQUAL(comm_check_same_digest(d, "reduced gradients", &err), ST_OK);
  double maxdiff = 0;
  for (size_t i = 0; i < n; i++) {
    double want = 0;
    for (int q = 0; q < comm_world_size(); q++) want += sinf((float)i * 0.37f + (float)q) * 1e-3f;
    double diff = fabs(g[i] - want);
    if (diff > maxdiff) maxdiff = diff;
  }
  CU_ASSERT(maxdiff < 1e-9);
  free(err);
  comm_reducer_free(r);
  free(g);
}

/* Slot j's value i: magnitudes from 2^-20 to 2^20 and both signs, so that
 * the association of a sum decides its rounding. Every rank can compute
 * every slot. */
static float slot_value(size_t j, size_t i) {
  uint32_t h = (uint32_t)(j * 2654435761u) ^ (uint32_t)(i * 40503u + 0x9e3779b9u);
  h ^= h >> 15;
  h *= 2246822519u;
  h ^= h >> 13;
  float mant = 1.0f + (float)(h & 0xffff) / 65536.0f;
  return ldexpf((h & 0x10000) ? -mant : mant, (int)((h >> 17) % 41) - 20);
}

/* The level-pairwise sum of v[0..m-1] (pairs (0,1), (2,3), ...; an odd
 * last node carried up), written out independently of comm/. */
static float level_pairwise(float *v, size_t m) {
  while (m > 1) {
    for (size_t k = 0; k < m / 2; k++) v[k] = v[2 * k] + v[2 * k + 1];
    if (m % 2) v[m / 2] = v[m - 1];
    m = (m + 1) / 2;
  }
  return v[0];
}

/* What world ranks of A slots must give at i: the tree over ranks of each
 * rank's tree over its slots (the tree over all slots when A is a power of
 * two). */
static float expected_slot_sum(size_t world, size_t A, size_t i) {
  float block[8], ranks[8];
  for (size_t r = 0; r < world; r++) {
    for (size_t a = 0; a < A; a++) block[a] = slot_value(r * A + a, i);
    ranks[r] = level_pairwise(block, A);
  }
  return level_pairwise(ranks, world);
}

/* Each rank computes its slots one by one into the buffer, as backward
 * does; the result must be the level-pairwise tree over all slots, bit for
 * bit, so 1 rank x 4 slots, 2 x 2 and 4 x 1 agree exactly. A left-to-right
 * sum of the same slots (from 4 on) differs: the data is such that order matters, so
 * the comparison can fail. */
static void test_reducer_sums_slots_in_level_pairwise_order(void) {
  const size_t n = 1000, slot_counts[] = {1, 2, 3, 4}, buckets[] = {7, 333, 4096};
  size_t world = (size_t)comm_world_size(), rank = (size_t)comm_rank();
  float *g = malloc(n * sizeof *g), *v = malloc(32 * sizeof *v);
  CU_ASSERT_FATAL(g && v && world <= 8);
  for (size_t c = 0; c < sizeof slot_counts / sizeof *slot_counts; c++) {
    size_t A = slot_counts[c], V = world * A;
    int order_matters = 0;
    for (size_t i = 0; i < n && V >= 4; i++) {
      float naive = 0;
      for (size_t j = 0; j < V; j++) naive += slot_value(j, i);
      for (size_t j = 0; j < V; j++) v[j] = slot_value(j, i);
      order_matters |= naive != level_pairwise(v, V);
    }
    if (V >= 4) CU_ASSERT(order_matters);
    for (size_t b = 0; b < sizeof buckets / sizeof *buckets; b++) {
      comm_reducer *r = NULL;
      char *err = NULL;
      CU_ASSERT_EQUAL_FATAL(comm_reducer_create(g, n, buckets[b], A, &r, &err), ST_OK);
      comm_reducer_begin(r);
      for (size_t a = 0; a < A; a++) {
        for (size_t i = 0; i < n; i++) g[i] = slot_value(rank * A + a, i);
        if (a + 1 == A) break;
        comm_reducer_next_slot(r);
        int zeroed = 1;
        for (size_t i = 0; i < n; i++) zeroed &= g[i] == 0.0f;
        CU_ASSERT(zeroed);
      }
      for (size_t lo = n; lo > 0; lo = lo > 150 ? lo - 150 : 0) {
        CU_ASSERT_EQUAL(comm_reducer_ready(r, lo, &err), ST_OK);
        CU_ASSERT_EQUAL(comm_reducer_poll(r, &err), ST_OK);
      }
      CU_ASSERT_EQUAL_FATAL(comm_reducer_finish(r, 1.0f, &err), ST_OK);
      size_t wrong = 0, not_flat = 0;
      for (size_t i = 0; i < n; i++) {
        float want = expected_slot_sum(world, A, i);
        wrong += memcmp(&g[i], &want, sizeof want) != 0;
        for (size_t j = 0; j < V; j++) v[j] = slot_value(j, i);
        float flat = level_pairwise(v, V);
        not_flat += memcmp(&g[i], &flat, sizeof flat) != 0;
      }
      CU_ASSERT_EQUAL(wrong, 0);
      if (comm_slots_exact(world, A)) CU_ASSERT_EQUAL(not_flat, 0);
      if (wrong)
        fprintf(stderr, "rank %zu: %zu of %zu sums differ (world %zu, slots %zu, bucket %zu)\n", rank, wrong, n,
                world, A, buckets[b]);
      comm_reducer_free(r);
    }
  }
  free(g);
  free(v);
}

/* Fills this rank's slots of a step into g[0..n) (slot values offset by
 * `salt` so two buffers differ), folding all but the last. */
static void fill_slots(comm_reducer *r, float *g, size_t n, size_t A, size_t salt) {
  size_t rank = (size_t)comm_rank();
  for (size_t a = 0; a < A; a++) {
    for (size_t i = 0; i < n; i++) g[i] = slot_value(rank * A + a, i + salt);
    if (a + 1 < A) comm_reducer_next_slot(r);
  }
}

static size_t slot_sums_wrong(const float *g, size_t n, size_t A, size_t salt) {
  size_t wrong = 0, world = (size_t)comm_world_size();
  for (size_t i = 0; i < n; i++) {
    float want = expected_slot_sum(world, A, i + salt);
    wrong += memcmp(&g[i], &want, sizeof want) != 0;
  }
  return wrong;
}

/* The word-embedding rows' pattern: a second reducer in flight with the
 * first (each on its own communicator, so messages never cross), summing
 * a different length of its buffer each step (comm_reducer_begin_n), both
 * in the level-pairwise order, bit for bit. */
static void test_reducer_sums_a_changing_length_beside_another(void) {
  const size_t n = 1000, cap = 600, lengths[] = {600, 37, 450, 1}, A = 2;
  float *g = malloc(n * sizeof *g), *h = malloc(cap * sizeof *h);
  comm_reducer *big = NULL, *rows = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(comm_reducer_create(g, n, 128, A, &big, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(comm_reducer_create(h, cap, 100, A, &rows, &err), ST_OK);
  for (size_t step = 0; step < sizeof lengths / sizeof *lengths; step++) {
    size_t m = lengths[step];
    comm_reducer_begin(big);
    comm_reducer_begin_n(rows, m);
    fill_slots(big, g, n, A, 0);
    fill_slots(rows, h, m, A, 5000);
    /* Both in flight at once, with the same bucket numbers and rounds. */
    CU_ASSERT_EQUAL(comm_reducer_ready(big, 0, &err), ST_OK);
    CU_ASSERT_EQUAL(comm_reducer_ready(rows, 0, &err), ST_OK);
    CU_ASSERT_EQUAL_FATAL(comm_reducer_finish(rows, 1.0f, &err), ST_OK);
    CU_ASSERT_EQUAL_FATAL(comm_reducer_finish(big, 1.0f, &err), ST_OK);
    CU_ASSERT_EQUAL(slot_sums_wrong(g, n, A, 0), 0);
    CU_ASSERT_EQUAL(slot_sums_wrong(h, m, A, 5000), 0);
    comm_reducer_stats st = comm_reducer_get_stats(rows);
    CU_ASSERT_EQUAL(st.buckets, (m + 99) / 100);
    CU_ASSERT_EQUAL(st.bytes, m * sizeof(float));
    /* Exchanged only across ranks; a span that starts and ends in order. */
    int spanned = st.first_start > 0 && st.last_done >= st.first_start;
    int none = st.first_start == 0 && st.last_done == 0;
    CU_ASSERT(comm_world_size() > 1 ? spanned : none);
  }
  free(err);
  comm_reducer_free(big);
  comm_reducer_free(rows);
  free(g);
  free(h);
}

/* The progress thread finishes every bucket's exchange with no call from
 * the caller after ready: polls between layers would leave them in flight
 * until finish. Bounded at 60 s so that a reducer without its thread fails
 * here instead of hanging. */
static void test_progress_thread_completes_exchanges_without_polls(void) {
  const size_t n = 100000, bucket = 8192;
  float *g = malloc(n * sizeof *g);
  for (size_t i = 0; i < n; i++) g[i] = (float)(i % 13 + (size_t)comm_rank());
  comm_reducer *r = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(comm_reducer_create(g, n, bucket, 1, &r, &err), ST_OK);
  comm_reducer_begin(r);
  CU_ASSERT_EQUAL(comm_reducer_ready(r, 0, &err), ST_OK);
  size_t buckets = comm_reducer_get_stats(r).buckets;
  const struct timespec ms = {0, 1000 * 1000};
  for (int i = 0; i < 60000 && comm_world_size() > 1 && comm_reducer_get_stats(r).finished < buckets; i++)
    nanosleep(&ms, NULL);
  CU_ASSERT_EQUAL(comm_reducer_get_stats(r).finished, comm_world_size() > 1 ? buckets : 0);
  CU_ASSERT_EQUAL(comm_reducer_finish(r, 1.0f, &err), ST_OK);
  int world = comm_world_size(), exact = 1;
  for (size_t i = 0; i < n; i++) exact &= g[i] == (float)((i % 13) * (size_t)world + (size_t)(world * (world - 1) / 2));
  CU_ASSERT(exact);
  free(err);
  comm_reducer_free(r);
  free(g);
}

/* comm_allreduce_or_u8: each rank sets its own bits; every rank ends with
 * all of them. */
static void test_or_reduction_unites_every_rank_bits(void) {
  uint8_t bits[4] = {0};
  int world = comm_world_size(), rank = comm_rank();
  bits[(size_t)rank % 4] |= (uint8_t)(1u << (rank % 8));
  bits[3] |= 0x80;
  CU_ASSERT_EQUAL(comm_allreduce_or_u8(bits, sizeof bits, NULL), ST_OK);
  uint8_t want[4] = {0};
  for (int q = 0; q < world; q++) want[(size_t)q % 4] |= (uint8_t)(1u << (q % 8));
  want[3] |= 0x80;
  CU_ASSERT_EQUAL(memcmp(bits, want, sizeof want), 0);
}

/* Whether x is 0, n or one of the cuts. */
static int at_cut(size_t x, size_t n, const size_t *cuts, size_t ncuts) {
  if (x == 0 || x == n) return 1;
  for (size_t c = 0; c < ncuts; c++)
    if (cuts[c] == x) return 1;
  return 0;
}

/* ZeRO-1: each rank's shard holds the same bits as the full allreduce
 * (expected_slot_sum), the shards tile the buffer once over all ranks with
 * every edge at a cut, gathering the compact shards rebuilds the sum on
 * rank 0, and the allgather copies each rank's shard of another buffer to
 * every rank. */
/* A comm_shard_sink that copies each piece into place, counting how often
 * each element arrives; past rank 0's own shard (own floats, passed whole)
 * no piece may exceed the 5 floats of the receive buffer. */
typedef struct gathered {
  float *full;
  unsigned char *seen; /* (n) times each element arrived */
  size_t own, delivered, bad;
} gathered;

static int gather_piece(void *ctx, size_t offset, size_t count, const float *data, char **err) {
  (void)err;
  gathered *g = ctx;
  memcpy(g->full + offset, data, count * sizeof *data);
  for (size_t i = 0; i < count; i++) g->seen[offset + i]++;
  g->bad += count == 0 || (g->delivered >= g->own && count > 5);
  g->delivered += count;
  return ST_OK;
}

static int fail_second_piece(void *ctx, size_t offset, size_t count, const float *data, char **err) {
  (void)offset, (void)count, (void)data;
  int *calls = ctx;
  return ++*calls == 2 ? status_set(err, ST_IO, "disk full at piece 2") : ST_OK;
}

static void test_sharded_reducer_scatters_the_allreduce_bits(void) {
  const size_t n = 1000, slot_counts[] = {1, 2}, buckets[] = {7, 333, 4096};
  size_t cuts[64], ncuts = 0;
  for (size_t x = 13; x < n; x += 17 + x % 29) cuts[ncuts++] = x;
  size_t world = (size_t)comm_world_size(), rank = (size_t)comm_rank();
  float *g = malloc(n * sizeof *g), *full = malloc(n * sizeof *full), *shard = malloc(n * sizeof *shard);
  float *data = malloc(n * sizeof *data), stream_buf[5];
  double *cover = malloc(n * sizeof *cover);
  CU_ASSERT_FATAL(g && full && shard && data && cover && ncuts < 64 && world <= 8);
  for (size_t c = 0; c < sizeof slot_counts / sizeof *slot_counts; c++)
    for (size_t b = 0; b < sizeof buckets / sizeof *buckets; b++) {
      size_t A = slot_counts[c];
      comm_reducer *r = NULL;
      char *err = NULL;
      CU_ASSERT_EQUAL_FATAL(comm_reducer_create_sharded(g, n, buckets[b], A, cuts, ncuts, &r, &err), ST_OK);
      comm_reducer_begin(r);
      for (size_t a = 0; a < A; a++) {
        for (size_t i = 0; i < n; i++) g[i] = slot_value(rank * A + a, i);
        if (a + 1 < A) comm_reducer_next_slot(r);
      }
      CU_ASSERT_EQUAL_FATAL(comm_reducer_finish(r, 1.0f, &err), ST_OK);
      size_t wrong = 0, off_cut = 0, at = 0;
      memset(cover, 0, n * sizeof *cover);
      for (size_t i = 0; i < n; i++) data[i] = -1.0f;
      for (size_t k = 0; k < comm_reducer_shards(r); k++) {
        size_t lo, hi;
        comm_reducer_shard(r, k, &lo, &hi);
        off_cut += !at_cut(lo, n, cuts, ncuts) + !at_cut(hi, n, cuts, ncuts);
        for (size_t i = lo; i < hi; i++) {
          float want = expected_slot_sum(world, A, i);
          wrong += memcmp(&g[i], &want, sizeof want) != 0;
          cover[i] += 1;
          shard[at++] = g[i];
          data[i] = slot_value(99, i);
        }
      }
      CU_ASSERT_EQUAL(wrong, 0);
      CU_ASSERT_EQUAL(off_cut, 0);
      CU_ASSERT_EQUAL(at, comm_reducer_shard_floats(r));
      CU_ASSERT_EQUAL(comm_allreduce_sum_f64(cover, n, &err), ST_OK);
      size_t not_once = 0;
      for (size_t i = 0; i < n; i++) not_once += cover[i] != 1.0;
      CU_ASSERT_EQUAL(not_once, 0);
      gathered into = {full, calloc(n, 1), comm_reducer_shard_floats(r), 0, 0};
      CU_ASSERT_FATAL(into.seen != NULL);
      CU_ASSERT_EQUAL_FATAL(comm_reducer_stream_shards(r, shard, stream_buf, 5, gather_piece, &into, &err), ST_OK);
      for (size_t i = 0; rank == 0 && i < n; i++) into.bad += into.seen[i] != 1;
      CU_ASSERT_EQUAL(into.bad, 0);
      free(into.seen);
      CU_ASSERT_EQUAL_FATAL(comm_reducer_allgather(r, data, &err), ST_OK);
      size_t bad_gather = 0, bad_allgather = 0;
      for (size_t i = 0; i < n; i++) {
        float want = expected_slot_sum(world, A, i), copy = slot_value(99, i);
        bad_gather += rank == 0 && memcmp(&full[i], &want, sizeof want) != 0;
        bad_allgather += memcmp(&data[i], &copy, sizeof copy) != 0;
      }
      CU_ASSERT_EQUAL(bad_gather, 0);
      CU_ASSERT_EQUAL(bad_allgather, 0);
      if (wrong || bad_gather || bad_allgather || not_once || off_cut)
        fprintf(stderr, "rank %zu: sharded world %zu slots %zu bucket %zu: %zu wrong, %zu gathered wrong, "
                        "%zu allgathered wrong, %zu not covered once, %zu edges off cuts\n",
                rank, world, A, buckets[b], wrong, bad_gather, bad_allgather, not_once, off_cut);
      comm_reducer_free(r);
    }
  free(g);
  free(full);
  free(shard);
  free(data);
  free(cover);
}

/* A sink that fails (a full disk on rank 0) ends the stream on rank 0
 * with its message while every other rank finishes its sends: the next
 * collective still pairs up on every rank. */
static void test_failing_sink_leaves_no_rank_waiting(void) {
  const size_t n = 600;
  size_t cuts[] = {100, 200, 300, 400, 500};
  float *g = calloc(n, sizeof *g), *shard = calloc(n, sizeof *shard), buf[7];
  comm_reducer *r = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(comm_reducer_create_sharded(g, n, 200, 1, cuts, 5, &r, &err), ST_OK);
  int calls = 0;
  int rc = comm_reducer_stream_shards(r, shard, buf, 7, fail_second_piece, &calls, &err);
  if (comm_rank() == 0) {
    CU_ASSERT_EQUAL(rc, ST_IO);
    CU_ASSERT_EQUAL(calls, 2);
    CU_ASSERT_PTR_NOT_NULL(err);
    if (err) CU_ASSERT_PTR_NOT_NULL(strstr(err, "disk full at piece 2"));
  } else {
    CU_ASSERT_EQUAL(rc, ST_OK);
  }
  double one = 1;
  CU_ASSERT_EQUAL(comm_allreduce_sum_f64(&one, 1, &err), ST_OK);
  CU_ASSERT_EQUAL(one, (double)comm_world_size());
  comm_reducer_free(r);
  free(err);
  free(g);
  free(shard);
}

static const harness_test tests[] = {
    {"test_failing_sink_leaves_no_rank_waiting", test_failing_sink_leaves_no_rank_waiting},
    {"test_sharded_reducer_scatters_the_allreduce_bits", test_sharded_reducer_scatters_the_allreduce_bits},
    {"test_world_matches_launcher_or_is_one", test_world_matches_launcher_or_is_one},
    {"test_reducer_sums_a_changing_length_beside_another", test_reducer_sums_a_changing_length_beside_another},
    {"test_or_reduction_unites_every_rank_bits", test_or_reduction_unites_every_rank_bits},
    {"test_progress_thread_completes_exchanges_without_polls",
     test_progress_thread_completes_exchanges_without_polls},
    {"test_reducer_sums_slots_in_level_pairwise_order", test_reducer_sums_slots_in_level_pairwise_order},
    {"test_library_version_names_open_mpi_and_standard", test_library_version_names_open_mpi_and_standard},
    {"test_sum_is_added_in_rank_order_on_every_rank", test_sum_is_added_in_rank_order_on_every_rank},
    {"test_max_is_global", test_max_is_global},
    {"test_broadcast_copies_root_bytes", test_broadcast_copies_root_bytes},
    {"test_digest_mismatch_names_the_differing_rank", test_digest_mismatch_names_the_differing_rank},
    {"test_reducer_sums_every_bucket_exactly", test_reducer_sums_every_bucket_exactly},
    {"test_reducer_result_is_identical_on_every_rank", test_reducer_result_is_identical_on_every_rank},
    {NULL, NULL},
};
const harness_suite comm_world_suite = {"world", tests};
