/* comm_reducer_stream_shards: every rank's shard to rank 0 a piece at a
 * time, so that rank 0 can write the full optimizer state without holding
 * it. One watched wait per rank (the watchdog's collective count). */
#include <assert.h>
#include <limits.h>
#include <stdlib.h>

#include <mpi.h>

#include "comm/comm.h"
#include "comm/comm_internal.h"
#include "util/status.h"

enum { STREAM_TAG = 4096 }; /* above the reducer's round tags */

/* Where a stream stands: rank q's bucket k, floats [at, hi) still to come. */
typedef struct cursor {
  const comm_reducer *r;
  int world, q;
  size_t k, at, hi, piece;
} cursor;

/* Moves to the next non-empty range of rank q, or of the ranks after it
 * (up to rank `last`); q == last + 1 when there is none. */
static void next_range(cursor *c, int last) {
  while (c->q <= last) {
    while (c->k < comm_reducer_shards(c->r)) {
      comm_reducer_shard_of(c->r, c->k++, c->q, &c->at, &c->hi);
      if (c->at < c->hi) return;
    }
    c->q++;
    c->k = 0;
  }
}

static size_t piece_len(const cursor *c) { return c->hi - c->at < c->piece ? c->hi - c->at : c->piece; }

static void advance_piece(cursor *c, int last) {
  c->at += piece_len(c);
  if (c->at == c->hi) next_range(c, last);
}

/* Rank 0 receiving: one piece in flight into buf. */
typedef struct receiver {
  cursor c;
  float *buf;
  MPI_Request req;
  comm_shard_sink sink;
  void *ctx;
  int sink_rc;
  char *sink_err;
} receiver;

static int post_receive(receiver *s, char **err) {
  s->req = MPI_REQUEST_NULL;
  if (s->c.q >= s->c.world) return ST_OK;
  int rc = MPI_Irecv(s->buf, (int)piece_len(&s->c), MPI_FLOAT, s->c.q, STREAM_TAG, MPI_COMM_WORLD, &s->req);
  return rc == MPI_SUCCESS ? ST_OK : comm_mpi_error(err, rc, "MPI_Irecv");
}

static int advance_receiver(void *ctx, int *done, char **err) {
  receiver *s = ctx;
  for (;;) {
    *done = s->c.q >= s->c.world;
    if (*done) return ST_OK;
    int flag = 0, rc = MPI_Test(&s->req, &flag, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return comm_mpi_error(err, rc, "MPI_Test");
    if (!flag) return ST_OK;
    if (s->sink_rc == ST_OK) s->sink_rc = s->sink(s->ctx, s->c.at, piece_len(&s->c), s->buf, &s->sink_err);
    advance_piece(&s->c, s->c.world - 1);
    if ((rc = post_receive(s, err))) return rc;
  }
}

/* Rank 0: its own shard straight to sink, then the others' pieces. */
static int receive_all(comm_reducer *r, const float *shard, float *buf, size_t piece, comm_shard_sink sink,
                       void *ctx, char **err) {
  int world = comm_world_size();
  receiver s = {.c = {r, world, 0, 0, 0, 0, piece}, .buf = buf, .sink = sink, .ctx = ctx};
  for (size_t k = 0, off = 0; k < comm_reducer_shards(r) && s.sink_rc == ST_OK; k++) {
    size_t lo, hi;
    comm_reducer_shard(r, k, &lo, &hi);
    if (hi > lo) s.sink_rc = sink(ctx, lo, hi - lo, shard + off, &s.sink_err);
    off += hi - lo;
  }
  s.c.q = 1;
  next_range(&s.c, world - 1);
  int rc = world > 1 ? post_receive(&s, err) : ST_OK;
  if (rc == ST_OK && world > 1) rc = comm_watch_progress(advance_receiver, &s, "optimizer state stream", err);
  if (rc == ST_OK && s.sink_rc) {
    rc = s.sink_rc;
    status_set(err, rc, "%s", s.sink_err ? s.sink_err : "writing the optimizer state failed");
  }
  if (rc && s.req != MPI_REQUEST_NULL) {
    MPI_Cancel(&s.req);
    MPI_Request_free(&s.req);
  }
  free(s.sink_err);
  return rc;
}

/* Another rank: every piece of its shard sent at once (they point into
 * shard, nothing is copied), then one watched wait. */
static int send_all(comm_reducer *r, const float *shard, size_t piece, char **err) {
  int rank = comm_rank();
  cursor c = {r, comm_world_size(), rank, 0, 0, 0, piece};
  size_t n = 0;
  for (next_range(&c, rank); c.q == rank; advance_piece(&c, rank)) n++;
  MPI_Request *req = malloc((n ? n : 1) * sizeof *req);
  if (!req) return status_set(err, ST_NOMEM, "rank %d: out of memory for the optimizer state stream", rank);
  c = (cursor){r, comm_world_size(), rank, 0, 0, 0, piece};
  size_t i = 0, off = 0;
  int rc = MPI_SUCCESS;
  for (next_range(&c, rank); c.q == rank && rc == MPI_SUCCESS; advance_piece(&c, rank)) {
    rc = MPI_Isend(shard + off, (int)piece_len(&c), MPI_FLOAT, 0, STREAM_TAG, MPI_COMM_WORLD, &req[i++]);
    off += piece_len(&c);
  }
  int st = rc == MPI_SUCCESS ? comm_watch_wait(req, (int)n, "optimizer state stream", err)
                             : comm_mpi_error(err, rc, "MPI_Isend");
  free(req);
  return st;
}

int comm_reducer_stream_shards(comm_reducer *r, const float *shard, float *buf, size_t piece,
                               comm_shard_sink sink, void *ctx, char **err) {
  assert(r && piece > 0 && piece <= INT_MAX);
  if (comm_rank() == 0) {
    assert(sink && (buf || comm_world_size() == 1));
    return receive_all(r, shard, buf, piece, sink, ctx, err);
  }
  return send_all(r, shard, piece, err);
}
