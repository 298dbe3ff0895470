/* The gradient sum over slots and ranks in the level-pairwise order (see
 * comm.h): partial sums of this rank's earlier slots, folded into each
 * bucket of the last one as backward finishes it, then per bucket a
 * non-blocking point-to-point exchange that a progress thread (or, without
 * MPI_THREAD_MULTIPLE, the caller's polls) moves on, round by round.
 * Buckets start in bucket order on every rank. */
#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "comm/comm.h"
#include "comm/comm_internal.h"
#include "util/status.h"
#include "util/timer.h"

/* Exchanges in flight at once: each holds a receive buffer. Bucket k uses
 * exchange k mod IN_FLIGHT, so among the buckets in flight, (k mod
 * IN_FLIGHT, round) names a message uniquely: its tag. */
enum { IN_FLIGHT = 4, ROUND_TAGS = 64, MAX_ROUNDS = 62 };

/* The progress thread's pause between polls while exchanges are in
 * flight: short next to a round's transfer, long enough that the thread
 * takes little of the core backward runs on (docs/scaling.md measured it). */
enum { PROGRESS_NAP_NS = 50 * 1000 };

typedef struct exchange {
  int active;
  size_t bucket;
  int round;                          /* the round posted, 0 .. rounds-1 */
  MPI_Request req[2];                 /* its send and receive (or NULL) */
  size_t lo[MAX_ROUNDS / 2 + 1];      /* halving: range owned before round i */
  size_t hi[MAX_ROUNDS / 2 + 1];
  float *scratch;                     /* received values awaiting their add */
  size_t add_lo, add_n;               /* where they go (add_n 0: nothing to add) */
} exchange;

struct comm_reducer {
  float *buf;       /* (capacity) */
  size_t n, bucket; /* floats of buf summed this step, floats per bucket */
  size_t capacity;  /* n at creation: what partials, edges and scratch are sized for */
  MPI_Comm comm;    /* a duplicate of MPI_COMM_WORLD: its tags never meet another reducer's */
  size_t nbuckets;
  size_t *edges;    /* (nbuckets + 1) bucket k is [edges[k + 1], edges[k]) */
  size_t max_bucket;
  /* Sharded (ZeRO-1): bucket and shard edges fall on cuts (sorted), and
   * the exchange stops once each rank holds its shard's sums. */
  int sharded;
  size_t *cuts, ncuts;
  int *counts, *displs; /* (nbuckets, world) every rank's shard of each bucket */
  size_t shard_floats;
  /* This rank's slots: a binary counter of partial sums. */
  size_t slots, slot;
  float *partial;   /* (depth, n) */
  int *level;       /* (depth) the tree level of each partial held */
  size_t depth, held;
  /* Across ranks. */
  int rank, world, pow2;
  int steps;        /* log2(world) rounded up */
  int rounds;       /* 2 * steps; steps when a sharded power-of-two world stops after halving */
  size_t ready;     /* buckets 0..ready-1 are final here (partials folded in) */
  size_t started;   /* buckets 0..started-1 have started their exchange */
  size_t finished;  /* buckets whose exchange is complete */
  exchange x[IN_FLIGHT];
  float *scratch;   /* (IN_FLIGHT, scratch_floats) */
  double first_start, last_done, wait_seconds, total_seconds;
  /* A failed exchange cannot complete: every later call returns it. */
  int failed;
  char *failure;
  /* The progress thread (world > 1 with MPI_THREAD_MULTIPLE): it polls
   * while buckets are ready but unfinished and waits on `work` otherwise.
   * lock guards the counters, the exchanges and the failure against it. */
  pthread_mutex_t lock;
  pthread_cond_t work;
  pthread_t thread;
  int thread_on, stop;
};

int comm_slots_exact(size_t world, size_t slots) { return world == 1 || (slots > 0 && (slots & (slots - 1)) == 0); }

static size_t bucket_lo(const comm_reducer *r, size_t k) { return r->edges[k + 1]; }

static size_t bucket_hi(const comm_reducer *r, size_t k) { return r->edges[k]; }

/* The largest cut <= x (0 and n count as cuts); x itself when there are
 * no cuts. */
static size_t cut_at_or_below(const comm_reducer *r, size_t x) {
  if (!r->sharded) return x;
  size_t a = 0, b = r->ncuts; /* first cut > x is in [a, b] */
  while (a < b) {
    size_t m = a + (b - a) / 2;
    if (r->cuts[m] <= x) a = m + 1;
    else b = m;
  }
  return a == 0 ? 0 : r->cuts[a - 1];
}

/* The cut in [lo, hi] nearest to x (lo or hi when none is inside). Any
 * split point gives the same sums: each element's tree over ranks does not
 * depend on where ranges are cut, only which rank finishes it. */
static size_t cut_near(const comm_reducer *r, size_t lo, size_t hi, size_t x) {
  if (!r->sharded) return x;
  size_t below = cut_at_or_below(r, x);
  if (below < lo) below = lo;
  size_t above = hi;
  size_t a = 0, b = r->ncuts;
  while (a < b) {
    size_t m = a + (b - a) / 2;
    if (r->cuts[m] < x) a = m + 1;
    else b = m;
  }
  if (a < r->ncuts && r->cuts[a] < hi) above = r->cuts[a];
  return x - below <= above - x ? below : above;
}

static size_t split_point(const comm_reducer *r, size_t lo, size_t hi) {
  return cut_near(r, lo, hi, lo + (hi - lo) / 2);
}

/* Buckets of the first r->n floats from their end, bucket_floats each (in
 * sharded mode, each start moved down to a cut). */
static void cut_buckets(comm_reducer *r) {
  size_t e = r->n;
  r->nbuckets = 0;
  r->edges[0] = e;
  while (e > 0) {
    size_t lo = cut_at_or_below(r, e > r->bucket ? e - r->bucket : 0);
    if (e - lo > r->max_bucket) r->max_bucket = e - lo;
    r->edges[++r->nbuckets] = e = lo;
  }
}

static int set_up_buckets(comm_reducer *r, char **err) {
  size_t most = r->n == 0 ? 0 : r->n / r->bucket + 2;
  r->edges = malloc((most + 1) * sizeof *r->edges);
  if (!r->edges) return status_set(err, ST_NOMEM, "out of memory for the gradient buckets");
  cut_buckets(r);
  if (r->max_bucket > INT_MAX)
    return status_set(err, ST_INVALID, "gradient bucket of %zu floats is too large for MPI (at most %d)",
                      r->max_bucket, INT_MAX);
  return ST_OK;
}

/* Rank q's shard of bucket k: where the halving leaves it on a
 * power-of-two world; otherwise the q-th of world near-equal pieces. */
static void shard_of(const comm_reducer *r, size_t k, int q, size_t *lo, size_t *hi) {
  size_t a = bucket_lo(r, k), b = bucket_hi(r, k);
  if (r->pow2) {
    for (int i = 0; i < r->steps; i++) {
      size_t mid = split_point(r, a, b);
      if (q & (1 << i)) a = mid;
      else b = mid;
    }
    *lo = a;
    *hi = b;
    return;
  }
  size_t w = (size_t)r->world, len = b - a;
  *lo = q == 0 ? a : cut_near(r, a, b, a + len / w * (size_t)q + len % w * (size_t)q / w);
  *hi = q == r->world - 1 ? b : cut_near(r, a, b, a + len / w * (size_t)(q + 1) + len % w * (size_t)(q + 1) / w);
}

static int set_up_shards(comm_reducer *r, char **err) {
  size_t cells = r->nbuckets * (size_t)r->world;
  r->counts = malloc((cells ? cells : 1) * sizeof *r->counts);
  r->displs = malloc((cells ? cells : 1) * sizeof *r->displs);
  if (!r->counts || !r->displs) return status_set(err, ST_NOMEM, "out of memory for the optimizer shard table");
  for (size_t k = 0; k < r->nbuckets; k++)
    for (int q = 0; q < r->world; q++) {
      size_t lo, hi;
      shard_of(r, k, q, &lo, &hi);
      r->counts[k * (size_t)r->world + (size_t)q] = (int)(hi - lo);
      r->displs[k * (size_t)r->world + (size_t)q] = (int)(lo - bucket_lo(r, k));
      if (q == r->rank) r->shard_floats += hi - lo;
    }
  return ST_OK;
}

/* Partial sums a rank of `slots` slots can hold at once: the bits of
 * slots - 1 (the counter's value before the last slot). */
static size_t partial_depth(size_t slots) {
  size_t d = 0;
  for (size_t v = slots - 1; v; v >>= 1) d++;
  return d;
}

size_t comm_reducer_bytes(size_t n, size_t bucket_floats, size_t slots, size_t world) {
  assert(bucket_floats > 0 && slots > 0);
  size_t bytes = partial_depth(slots) * n * sizeof(float);
  if (world <= 1 || n == 0) return bytes;
  size_t nbuckets = (n + bucket_floats - 1) / bucket_floats;
  size_t bucket = n < bucket_floats ? n : bucket_floats;
  size_t floats = (world & (world - 1)) == 0 ? (bucket + 1) / 2 : bucket;
  return bytes + (nbuckets < IN_FLIGHT ? nbuckets : IN_FLIGHT) * floats * sizeof(float);
}

static int set_up_exchanges(comm_reducer *r, char **err) {
  r->rank = comm_rank();
  r->world = comm_world_size();
  r->pow2 = (r->world & (r->world - 1)) == 0;
  while ((1 << r->steps) < r->world) r->steps++;
  r->rounds = r->sharded && r->pow2 ? r->steps : 2 * r->steps;
  if (r->world == 1 || r->nbuckets == 0) return ST_OK;
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &r->comm);
  if (rc != MPI_SUCCESS) return comm_mpi_error(err, rc, "MPI_Comm_dup");
  /* Halving receives at most half a bucket (more when split at a cut);
   * the binomial reduce a whole. */
  size_t floats = r->pow2 && !r->sharded ? (r->max_bucket + 1) / 2 : r->max_bucket;
  size_t count = r->nbuckets < IN_FLIGHT ? r->nbuckets : IN_FLIGHT;
  r->scratch = malloc(count * floats * sizeof *r->scratch);
  if (!r->scratch)
    return status_set(err, ST_NOMEM, "rank %d: out of memory for %zu gradient receive buffers of %zu floats", r->rank,
                      count, floats);
  for (size_t i = 0; i < count; i++) r->x[i].scratch = r->scratch + i * floats;
  return ST_OK;
}

static void *progress_main(void *arg);

static int create(float *buf, size_t n, size_t bucket_floats, size_t slots, const size_t *cuts, size_t ncuts,
                  int sharded, comm_reducer **out, char **err) {
  assert(bucket_floats > 0 && slots > 0);
  if (bucket_floats > INT_MAX)
    return status_set(err, ST_INVALID, "gradient bucket of %zu floats is too large for MPI (at most %d)",
                      bucket_floats, INT_MAX);
  comm_reducer *r = calloc(1, sizeof *r);
  if (!r) return status_set(err, ST_NOMEM, "out of memory for the gradient reducer");
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->work, NULL);
  r->buf = buf;
  r->n = r->capacity = n;
  r->comm = MPI_COMM_NULL;
  r->bucket = bucket_floats;
  r->slots = slots;
  r->sharded = sharded;
  if (sharded && ncuts) {
    r->cuts = malloc(ncuts * sizeof *r->cuts);
    if (!r->cuts) {
      comm_reducer_free(r);
      return status_set(err, ST_NOMEM, "out of memory for the gradient reducer");
    }
    for (size_t i = 0; i < ncuts; i++) {
      assert(cuts[i] <= n && (i == 0 || cuts[i - 1] < cuts[i]));
      r->cuts[i] = cuts[i];
    }
    r->ncuts = ncuts;
  }
  int rc = set_up_buckets(r, err);
  r->depth = partial_depth(slots);
  if (!rc && r->depth) {
    r->partial = malloc(r->depth * (n ? n : 1) * sizeof *r->partial);
    r->level = malloc(r->depth * sizeof *r->level);
    if (!r->partial || !r->level)
      rc = status_set(err, ST_NOMEM,
                      "out of memory for %zu partial gradient sums of %zu floats (accumulation %zu needs them)",
                      r->depth, n, slots);
  }
  if (rc == ST_OK) rc = set_up_exchanges(r, err);
  if (rc == ST_OK && sharded) rc = set_up_shards(r, err);
  if (rc) {
    comm_reducer_free(r);
    return rc;
  }
  comm_reducer_begin(r);
  /* Without a thread (it could not start, or MPI forbids it) the caller's
   * polls still move the exchanges on, only less often. */
  if (r->world > 1 && r->nbuckets > 0 && comm_thread_multiple())
    r->thread_on = pthread_create(&r->thread, NULL, progress_main, r) == 0;
  *out = r;
  return ST_OK;
}

int comm_reducer_create(float *buf, size_t n, size_t bucket_floats, size_t slots, comm_reducer **out,
                        char **err) {
  return create(buf, n, bucket_floats, slots, NULL, 0, 0, out, err);
}

int comm_reducer_create_sharded(float *buf, size_t n, size_t bucket_floats, size_t slots, const size_t *cuts,
                                size_t ncuts, comm_reducer **out, char **err) {
  return create(buf, n, bucket_floats, slots, cuts, ncuts, 1, out, err);
}

void comm_reducer_free(comm_reducer *r) {
  if (!r) return;
  if (r->thread_on) {
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_signal(&r->work);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
  }
  pthread_cond_destroy(&r->work);
  pthread_mutex_destroy(&r->lock);
  if (r->comm != MPI_COMM_NULL) MPI_Comm_free(&r->comm);
  free(r->failure);
  free(r->edges);
  free(r->cuts);
  free(r->counts);
  free(r->displs);
  free(r->partial);
  free(r->level);
  free(r->scratch);
  free(r);
}

void comm_reducer_begin(comm_reducer *r) { comm_reducer_begin_n(r, r->capacity); }

void comm_reducer_begin_n(comm_reducer *r, size_t n) {
  assert(n <= r->capacity && (!r->sharded || n == r->capacity));
  pthread_mutex_lock(&r->lock);
  if (n != r->n) {
    r->n = n;
    cut_buckets(r);
  }
  for (size_t i = 0; i < IN_FLIGHT; i++) {
    r->x[i].active = 0;
    r->x[i].req[0] = r->x[i].req[1] = MPI_REQUEST_NULL;
  }
  r->slot = r->held = 0;
  r->ready = r->started = r->finished = 0;
  r->wait_seconds = r->total_seconds = r->first_start = r->last_done = 0;
  pthread_mutex_unlock(&r->lock);
}

/* ------------------------------------------------- slots on this rank */

static float *partial_at(const comm_reducer *r, size_t i) { return r->partial + i * r->n; }

static void add_into(float *restrict acc, const float *restrict x, size_t n) {
  for (size_t i = 0; i < n; i++) acc[i] += x[i];
}

/* The binary counter: a new slot (level 0) merges with the partial of the
 * same level on top (the tree's left neighbour: left + right), and the
 * result with the next, as long as levels match; otherwise it is pushed. */
void comm_reducer_next_slot(comm_reducer *r) {
  assert(r->slot + 1 < r->slots);
  if (r->held > 0 && r->level[r->held - 1] == 0) {
    add_into(partial_at(r, r->held - 1), r->buf, r->n);
    r->level[r->held - 1] = 1;
    while (r->held >= 2 && r->level[r->held - 2] == r->level[r->held - 1]) {
      add_into(partial_at(r, r->held - 2), partial_at(r, r->held - 1), r->n);
      r->level[r->held - 2]++;
      r->held--;
    }
  } else {
    assert(r->held < r->depth);
    memcpy(partial_at(r, r->held), r->buf, r->n * sizeof *r->buf);
    r->level[r->held++] = 0;
  }
  memset(r->buf, 0, r->n * sizeof *r->buf);
  r->slot++;
}

/* The last slot, in [a, b): folded right to left into the held partials
 * (levels strictly decreasing towards the top), which is the level-pairwise
 * tree with its unpaired nodes carried up. */
static void fold_last_slot(comm_reducer *r, size_t a, size_t b) {
  for (size_t i = r->held; i-- > 0;) {
    const float *p = partial_at(r, i);
    for (size_t j = a; j < b; j++) r->buf[j] = p[j] + r->buf[j];
  }
}

/* ------------------------------------------------- across ranks */

static int tag_of(const exchange *x) {
  return (int)(x->bucket % IN_FLIGHT) * ROUND_TAGS + x->round;
}

static int post(comm_reducer *r, exchange *x, size_t send_lo, size_t send_n, float *recv, size_t recv_n,
                int peer_send, int peer_recv, char **err) {
  int tag = tag_of(x), rc;
  if (recv_n && (rc = MPI_Irecv(recv, (int)recv_n, MPI_FLOAT, peer_recv, tag, r->comm, &x->req[1])) !=
                    MPI_SUCCESS)
    return comm_mpi_error(err, rc, "MPI_Irecv");
  if (send_n && (rc = MPI_Isend(r->buf + send_lo, (int)send_n, MPI_FLOAT, peer_send, tag, r->comm,
                                &x->req[0])) != MPI_SUCCESS)
    return comm_mpi_error(err, rc, "MPI_Isend");
  return ST_OK;
}

/* Recursive halving, round i (distance 2^i): keep one half of the range
 * owned, send the other to the partner, receive its values for ours. Kept
 * alone (without the doubling rounds), this is a reduce-scatter: rank r
 * ends owning [lo[steps], hi[steps]) summed over all ranks. */
static int post_halving(comm_reducer *r, exchange *x, int i, char **err) {
  size_t lo = x->lo[i], hi = x->hi[i], mid = split_point(r, lo, hi);
  int partner = r->rank ^ (1 << i), upper = r->rank & (1 << i);
  x->lo[i + 1] = upper ? mid : lo;
  x->hi[i + 1] = upper ? hi : mid;
  size_t give_lo = upper ? lo : mid, give_n = upper ? mid - lo : hi - mid;
  x->add_lo = x->lo[i + 1];
  x->add_n = x->hi[i + 1] - x->lo[i + 1];
  return post(r, x, give_lo, give_n, x->scratch, x->add_n, partner, partner, err);
}

/* Recursive doubling, mirroring halving round i: send the range owned
 * after it, receive the partner's (the other half of the range before it)
 * straight into buf. */
static int post_doubling(comm_reducer *r, exchange *x, int i, char **err) {
  int partner = r->rank ^ (1 << i), upper = r->rank & (1 << i);
  size_t lo = x->lo[i], hi = x->hi[i], mid = split_point(r, lo, hi);
  size_t theirs_lo = upper ? lo : mid, theirs_n = upper ? mid - lo : hi - mid;
  x->add_n = 0;
  return post(r, x, x->lo[i + 1], x->hi[i + 1] - x->lo[i + 1], r->buf + theirs_lo, theirs_n, partner, partner,
              err);
}

/* Binomial reduce, round i (distance d = 2^i): rank r with r mod 2d == 0
 * adds r + d's sum to its own (left + right); r mod 2d == d sends and
 * waits for the broadcast. Unpaired ranks carry their sum up. */
static int post_reduce(comm_reducer *r, exchange *x, int i, char **err) {
  int d = 1 << i, rank = r->rank;
  size_t lo = bucket_lo(r, x->bucket), n = bucket_hi(r, x->bucket) - lo;
  x->add_n = 0;
  if (rank % (2 * d) == 0 && rank + d < r->world) {
    x->add_lo = lo;
    x->add_n = n;
    return post(r, x, 0, 0, x->scratch, n, -1, rank + d, err);
  }
  if (rank % (2 * d) == d) return post(r, x, lo, n, NULL, 0, rank - d, -1, err);
  return ST_OK;
}

/* Binomial broadcast, mirroring reduce round i. */
static int post_broadcast(comm_reducer *r, exchange *x, int i, char **err) {
  int d = 1 << i, rank = r->rank;
  size_t lo = bucket_lo(r, x->bucket), n = bucket_hi(r, x->bucket) - lo;
  x->add_n = 0;
  if (rank % (2 * d) == 0 && rank + d < r->world) return post(r, x, lo, n, NULL, 0, rank + d, -1, err);
  if (rank % (2 * d) == d) return post(r, x, 0, 0, r->buf + lo, n, -1, rank - d, err);
  return ST_OK;
}

static int post_round(comm_reducer *r, exchange *x, char **err) {
  int i = x->round, s = r->steps;
  if (i < s) return r->pow2 ? post_halving(r, x, i, err) : post_reduce(r, x, i, err);
  return r->pow2 ? post_doubling(r, x, 2 * s - 1 - i, err) : post_broadcast(r, x, 2 * s - 1 - i, err);
}

static int start_bucket(comm_reducer *r, size_t k, char **err) {
  exchange *x = &r->x[k % IN_FLIGHT];
  if (k == 0) r->first_start = timer_now();
  x->active = 1;
  x->bucket = k;
  x->round = 0;
  x->lo[0] = bucket_lo(r, k);
  x->hi[0] = bucket_hi(r, k);
  r->started++;
  return post_round(r, x, err);
}

/* Completes every round whose messages have arrived and posts the next,
 * then starts ready buckets whose exchange slot is free. */
static int advance(comm_reducer *r, char **err) {
  for (int progressed = 1; progressed;) {
    progressed = 0;
    for (size_t i = 0; i < IN_FLIGHT; i++) {
      exchange *x = &r->x[i];
      if (!x->active) continue;
      int flag = 0, rc = MPI_Testall(2, x->req, &flag, MPI_STATUSES_IGNORE);
      if (rc != MPI_SUCCESS) return comm_mpi_error(err, rc, "MPI_Testall");
      if (!flag) continue;
      /* Float addition is commutative: ours + theirs is the same bits as
       * theirs + ours, so this is the tree's node whichever rank is left. */
      if (x->add_n) add_into(r->buf + x->add_lo, x->scratch, x->add_n);
      x->add_n = 0;
      progressed = 1;
      if (++x->round == r->rounds) {
        x->active = 0;
        r->finished++;
        r->last_done = timer_now();
      } else if ((rc = post_round(r, x, err))) {
        return rc;
      }
    }
    while (r->started < r->ready && !r->x[r->started % IN_FLIGHT].active) {
      int rc = start_bucket(r, r->started, err);
      if (rc) return rc;
      progressed = 1;
    }
  }
  return ST_OK;
}

/* advance, keeping its failure (the caller of ready and poll, a callback
 * inside backward, may drop it, and the progress thread has no one to tell;
 * finish returns it again). Under r->lock. */
static int advance_or_fail_locked(comm_reducer *r, char **err) {
  if (r->failed) return status_set(err, r->failed, "%s", r->failure ? r->failure : "gradient exchange failed");
  int rc = advance(r, err);
  if (rc) {
    r->failed = rc;
    r->failure = *err ? strdup(*err) : NULL;
  }
  return rc;
}

/* Open MPI moves a non-blocking transfer on only inside MPI calls (over
 * TCP, a large bucket goes out a socket buffer at a time): this thread
 * makes those calls while the caller computes, where polls between layers
 * left the wire idle for a whole layer's backward. */
static void *progress_main(void *arg) {
  comm_reducer *r = arg;
  const struct timespec nap = {0, PROGRESS_NAP_NS};
  pthread_mutex_lock(&r->lock);
  while (!r->stop) {
    if (r->failed || r->finished == r->ready) {
      pthread_cond_wait(&r->work, &r->lock);
      continue;
    }
    char *err = NULL;
    advance_or_fail_locked(r, &err);
    free(err);
    pthread_mutex_unlock(&r->lock);
    nanosleep(&nap, NULL);
    pthread_mutex_lock(&r->lock);
  }
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

int comm_reducer_ready(comm_reducer *r, size_t lo, char **err) {
  assert(r->slot + 1 == r->slots);
  pthread_mutex_lock(&r->lock);
  size_t was = r->ready;
  while (r->ready < r->nbuckets && bucket_lo(r, r->ready) >= lo) {
    fold_last_slot(r, bucket_lo(r, r->ready), bucket_hi(r, r->ready));
    r->ready++;
  }
  if (r->ready > was && r->thread_on) pthread_cond_signal(&r->work);
  int rc = r->world == 1 ? ST_OK : advance_or_fail_locked(r, err);
  pthread_mutex_unlock(&r->lock);
  return rc;
}

int comm_reducer_poll(comm_reducer *r, char **err) {
  if (r->world == 1) return ST_OK;
  pthread_mutex_lock(&r->lock);
  int rc = r->started == 0 ? ST_OK : advance_or_fail_locked(r, err);
  pthread_mutex_unlock(&r->lock);
  return rc;
}

static int advance_to_end(void *ctx, int *done, char **err) {
  comm_reducer *r = ctx;
  pthread_mutex_lock(&r->lock);
  int rc = advance_or_fail_locked(r, err);
  *done = r->finished == r->nbuckets;
  pthread_mutex_unlock(&r->lock);
  return rc;
}

int comm_reducer_finish(comm_reducer *r, float scale, char **err) {
  int rc = comm_reducer_ready(r, 0, err);
  if (rc) return rc;
  if (r->world > 1) {
    double t0 = timer_now();
    rc = comm_watch_progress(advance_to_end, r, "gradient exchange", err);
    double t1 = timer_now();
    if (rc) return rc;
    r->wait_seconds = t1 - t0;
    r->total_seconds = r->nbuckets ? r->last_done - r->first_start : 0;
  }
  if (scale != 1.0f)
    for (size_t i = 0; i < r->n; i++) r->buf[i] *= scale;
  return ST_OK;
}

/* ------------------------------------------------- shards (ZeRO-1) */

size_t comm_reducer_shards(const comm_reducer *r) { return r->sharded ? r->nbuckets : 0; }

void comm_reducer_shard(const comm_reducer *r, size_t k, size_t *lo, size_t *hi) {
  assert(r->sharded && k < r->nbuckets);
  shard_of(r, k, r->rank, lo, hi);
}

size_t comm_reducer_shard_floats(const comm_reducer *r) { return r->shard_floats; }

void comm_reducer_shard_of(const comm_reducer *r, size_t k, int q, size_t *lo, size_t *hi) {
  assert(r->sharded && k < r->nbuckets && q >= 0 && q < r->world);
  shard_of(r, k, q, lo, hi);
}

/* One MPI_Iallgatherv per bucket, then one watched wait. */
int comm_reducer_allgather(comm_reducer *r, float *data, char **err) {
  assert(r->sharded);
  if (r->world == 1 || r->nbuckets == 0) return ST_OK;
  MPI_Request *req = malloc(r->nbuckets * sizeof *req);
  if (!req) return status_set(err, ST_NOMEM, "rank %d: out of memory for parameter allgather", r->rank);
  size_t w = (size_t)r->world;
  int rc = MPI_SUCCESS;
  for (size_t k = 0; k < r->nbuckets && rc == MPI_SUCCESS; k++)
    rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data + bucket_lo(r, k), r->counts + k * w,
                         r->displs + k * w, MPI_FLOAT, MPI_COMM_WORLD, &req[k]);
  int st = rc == MPI_SUCCESS ? comm_watch_wait(req, (int)r->nbuckets, "parameter allgather", err)
                             : comm_mpi_error(err, rc, "parameter allgather");
  free(req);
  return st;
}

comm_reducer_stats comm_reducer_get_stats(comm_reducer *r) {
  pthread_mutex_lock(&r->lock);
  comm_reducer_stats s = {r->nbuckets, r->wait_seconds, r->total_seconds, (uint64_t)r->n * sizeof(float),
                          r->first_start, r->last_done, r->finished};
  pthread_mutex_unlock(&r->lock);
  return s;
}
