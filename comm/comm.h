/* comm: everything MPI. The rest of ddpt sees ranks and float buffers, never
 * mpi.h. Without mpirun, ddpt is a world of one and needs no launcher.
 *
 * Conventions:
 *  1. Functions that can fail return a status (util/status.h) and a malloc'd
 *     message through the last argument, naming the rank where it matters.
 *  2. Collectives must be called by every rank in the same order.
 *  3. MPI errors never abort silently inside MPI: comm installs
 *     MPI_ERRORS_RETURN and turns a failed call into a status; the caller
 *     reports it and calls comm_abort, which takes the whole job down (no
 *     rank is left waiting on a dead peer).
 *  4. Every reduction whose result feeds the model is identical on all ranks
 *     and the same run to run: scalars are summed in rank order; gradients
 *     in the level-pairwise order over the step's micro-batches (below),
 *     which does not depend on the world size either.
 */
#ifndef DDPT_COMM_COMM_H
#define DDPT_COMM_COMM_H

#include <stddef.h>
#include <stdint.h>

/* Initialises MPI if it is not already, asking for MPI_THREAD_MULTIPLE (the
 * reducers' progress threads call MPI; an MPI that grants only
 * MPI_THREAD_FUNNELED runs without them). Safe to call when the process
 * was not started by mpirun. */
int comm_init(int *argc, char ***argv, char **err);
/* Finalises MPI if comm_init initialised it; no-op otherwise. */
void comm_finalize(void);
/* Ends every rank of the job with exit status code. Does not return. */
void comm_abort(int code) __attribute__((noreturn));

/* Rank and world size; 0 and 1 before comm_init. */
int comm_rank(void);
int comm_world_size(void);

/* The MPI library's own version line (MPI_Get_library_version, first line),
 * plus the MPI standard version. Callable before comm_init. */
void comm_library_version(char *buf, size_t size);

/* Copies root's bytes into every rank's buf. */
int comm_broadcast(void *buf, size_t bytes, int root, char **err);

/* In place: vals[i] becomes the sum over ranks, added in rank order 0..W-1
 * on every rank (so it is identical everywhere and run to run). For the
 * loss, token counts, gradient-norm squares and evaluation sums. */
int comm_allreduce_sum_f64(double *vals, size_t n, char **err);
int comm_allreduce_max_f64(double *vals, size_t n, char **err);
/* In place: bits[i] becomes the bitwise OR over ranks (exact in any order).
 * For sets known on each rank, as bitmaps: the step's token ids. */
int comm_allreduce_or_u8(uint8_t *bits, size_t n, char **err);

/* Which rank runs on which host, for messages: one malloc'd line (*out,
 * the caller frees), hosts in the order of their first rank, each with its
 * ranks as ranges: "node01: ranks 0-3; node02: ranks 4-7". Collective.
 * A host lost mid-run is named by mpirun ("lost communication with a
 * remote daemon ... on node node02"); this line, printed at start, says
 * which ranks were on it. */
int comm_host_map(char **out, char **err);

/* Every rank passes its 32-byte digest of `what` (a config, a manifest, the
 * parameters). ST_MISMATCH when any rank's differs from rank 0's; the
 * message names `what` and the first differing rank, identically on every
 * rank, so all ranks stop together. */
int comm_check_same_digest(const uint8_t digest[32], const char *what, char **err);

/* The hang watchdog. Once started (collective; limit_s <= 0: off), every
 * wait inside a collective made during a watched phase is bounded by
 * limit_s: the rank that waits longer returns ST_COMM with one line naming
 * the step, the operation and the ranks it is waiting for (those that have
 * not reached this collective), and the caller reports it and calls
 * comm_abort. A rank stuck outside any collective for twice the limit in
 * one watched phase (compute, I/O) prints such a line from a thread of its
 * own and exits with status 4, which ends the job under mpirun. phase names
 * what the rank does now (op: a static string) and restarts the clock;
 * watched = 0 for phases that legitimately wait on one rank's long work
 * (rank 0's evaluation). stop (not collective) ends it; no-op when off. */
int comm_watchdog_start(double limit_s, char **err);
void comm_watchdog_phase(uint64_t step, const char *op, int watched);
void comm_watchdog_stop(void);

/* The gradient sum: one float buffer (the gradient arena) per micro-batch
 * of the step, summed over every rank in one order that does not depend on
 * the number of ranks.
 *
 * Slots: a step's micro-batches are V = world * slots buffers; rank r
 * computes slots r*slots ... r*slots + slots-1, one after the other, each
 * into a zeroed buf. The sum over the V slots is always the level-pairwise
 * tree: level 1 adds slots (0,1), (2,3), ...; level 2 adds those pairs two
 * by two, and so on, a node without a partner carried up unchanged. Float
 * addition is commutative, so only this association decides the bits.
 * When slots is a power of two (or world is 1), each rank's slots are a
 * subtree of that tree, and the result is the same bits for every world
 * that keeps V: 1 rank x 4 slots, 2 x 2 and 4 x 1 agree exactly
 * (comm_slots_exact). Otherwise the ranks' sums are combined by the same
 * tree over ranks: deterministic, identical on every rank, but another
 * association than V slots on one rank.
 *
 * On a rank: comm_reducer_next_slot after each slot but the last folds buf
 * into up to log2(slots) partial sums (a binary counter: n floats each)
 * and zeroes it. During the last slot's backward, buf fills from its end
 * towards its start (the last layers' gradients are finished first), so
 * buckets are cut from the end: bucket 0 covers the last `bucket_floats`
 * floats. comm_reducer_ready(lo) says every gradient at offset >= lo is
 * final: each bucket wholly in [lo, n) gets the partial sums folded in and
 * its exchange with the other ranks starts at once, overlapping the rest of
 * backward. A progress thread per reducer (world > 1, MPI_THREAD_MULTIPLE)
 * moves the exchanges on while buckets are in flight, polling every 50 us;
 * comm_reducer_poll (cheap; call it between layers) does so too, and is
 * all there is without the thread. comm_reducer_finish starts what is left, waits for all (one
 * watched wait, comm_watchdog_*) and multiplies the sums by scale. A
 * failure stays: ready and poll may be called where it cannot be reported
 * (inside backward), and every later call, finish too, returns it again.
 *
 * Across ranks, per bucket, non-blocking point to point: for a power-of-two
 * world, recursive halving (pairs r, r^d for d = 1, 2, 4, ...: each keeps
 * one half of its range and adds its partner's values for it, which makes
 * the tree's next level there) leaves each rank the finished sum of one
 * world-th of the bucket (a reduce-scatter), then recursive doubling copies
 * the pieces to every rank: about 2n bytes sent per rank. For
 * other worlds, a binomial reduce to rank 0 along the same tree and a
 * binomial broadcast back: about 2n log2(world) bytes through rank 0. */
typedef struct comm_reducer comm_reducer;

/* Whether world ranks of `slots` slots each sum in the level-pairwise
 * order over all world * slots slots (world 1, or slots a power of two). */
int comm_slots_exact(size_t world, size_t slots);

/* Of the step last finished; times are timer_now() readings, 0 when no
 * bucket was exchanged (world 1). A completion is seen when a poll or
 * finish finds it, so last_done is at most one poll interval late. */
typedef struct comm_reducer_stats {
  size_t buckets;       /* number of buckets */
  double wait_seconds;  /* time spent blocked in comm_reducer_finish */
  double total_seconds; /* first bucket start to last completion */
  uint64_t bytes;       /* bytes reduced per step */
  double first_start;   /* when bucket 0's exchange started */
  double last_done;     /* when the last bucket's exchange was seen complete */
  size_t finished;      /* buckets whose exchange is complete, so far */
} comm_reducer_stats;

/* buf must stay valid until comm_reducer_free. bucket_floats > 0, slots
 * > 0 (this rank's micro-batches per step). Every rank calls it with the
 * same n, bucket_floats and slots (collective: each reducer exchanges on a
 * communicator of its own, so several may be in flight at once). */
int comm_reducer_create(float *buf, size_t n, size_t bucket_floats, size_t slots, comm_reducer **out,
                        char **err);
void comm_reducer_free(comm_reducer *r); /* NULL is a no-op */
/* Starts a new step: no slot is held, no bucket is in flight; buf must be
 * zero before the first slot's backward. */
void comm_reducer_begin(comm_reducer *r);
/* comm_reducer_begin over only the first n floats of buf (n at most the n
 * it was created with, the same on every rank; not sharded): for a buffer
 * whose length changes from step to step: a sparse gradient kept as
 * compact rows, as many as the step touches, summed beside the dense one
 * by a second reducer. Buckets are cut from buf + n. */
void comm_reducer_begin_n(comm_reducer *r, size_t n);
/* buf holds a slot other than the last one of this rank's step: it is
 * folded into the partial sums, and buf is zero again. */
void comm_reducer_next_slot(comm_reducer *r);
int comm_reducer_ready(comm_reducer *r, size_t lo, char **err);
int comm_reducer_poll(comm_reducer *r, char **err);
int comm_reducer_finish(comm_reducer *r, float scale, char **err);
/* Safe while the progress thread runs (it takes the reducer's lock). */
comm_reducer_stats comm_reducer_get_stats(comm_reducer *r);

/* ZeRO-1: the same sum, but each rank finishes only its shard of buf.
 * Buckets and shards are cut only at cuts (ncuts sorted offsets in
 * [0, n], the same on every rank), so a caller's units of work (the
 * optimizer's chunks) are never split between ranks. Each bucket's shard
 * of rank q, on a power-of-two world, is the range recursive halving
 * leaves q (the exchange stops there: a reduce-scatter, every element the
 * same bits as the allreduce); on other worlds the full sum is formed as
 * above and the shard is the q-th of world near-equal pieces. Outside its
 * shard, buf holds partial sums after finish. */
int comm_reducer_create_sharded(float *buf, size_t n, size_t bucket_floats, size_t slots, const size_t *cuts,
                                size_t ncuts, comm_reducer **out, char **err);
/* What a reducer of n floats allocates beyond buf, sized without MPI
 * (`ddpt model info`): the partial sums `slots` slots per step need, and,
 * on a world of more than one rank, the receive buffers of the buckets in
 * flight, as much of them as an exchange writes (half a bucket where
 * recursive halving runs; a sharded reducer's buckets end at cuts, so
 * they may be longer by up to a cut's spacing). */
size_t comm_reducer_bytes(size_t n, size_t bucket_floats, size_t slots, size_t world);
/* This rank's shard: one range per bucket (0 when not sharded), bucket k
 * at [*lo, *hi); in bucket order they are the shard's compact layout
 * (comm_reducer_shard_floats floats in all). */
size_t comm_reducer_shards(const comm_reducer *r);
void comm_reducer_shard(const comm_reducer *r, size_t k, size_t *lo, size_t *hi);
size_t comm_reducer_shard_floats(const comm_reducer *r);
/* Collective. data (n floats, laid out as buf): every rank's shard of it
 * copied to all ranks (the updated parameters; exact copies). */
int comm_reducer_allgather(comm_reducer *r, float *data, char **err);
/* Rank q's shard of bucket k, as comm_reducer_shard gives this rank's. */
void comm_reducer_shard_of(const comm_reducer *r, size_t k, int q, size_t *lo, size_t *hi);

/* Takes, on rank 0, count floats of a rank's shard that belong at offset
 * (in floats) of buf's layout. */
typedef int (*comm_shard_sink)(void *ctx, size_t offset, size_t count, const float *data, char **err);
/* Collective. Every rank's compact shard (shard_floats floats) reaches sink
 * on rank 0, rank by rank from 0, each rank's in bucket order, in pieces
 * of at most piece floats: rank 0's straight from its shard, the others'
 * received one piece at a time into buf (piece floats, rank 0's; unused
 * elsewhere). So rank 0 never holds more than a piece of another rank's
 * shard, where gathering them would take the whole buffer. After sink
 * fails, the rest is still received (no rank is left waiting) but not
 * passed on; the failure is returned on rank 0. */
int comm_reducer_stream_shards(comm_reducer *r, const float *shard, float *buf, size_t piece,
                               comm_shard_sink sink, void *ctx, char **err);

#endif
