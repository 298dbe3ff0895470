/* Bucketed, overlapped gradient sum (see comm.h). Buckets are cut from the
 * end of the buffer because backward finishes the last layers first; each
 * is one MPI_Iallreduce, always started in bucket order on every rank. */
#include <assert.h>
#include <limits.h>
#include <stdlib.h>

#include <mpi.h>

#include "comm/comm.h"
#include "comm/comm_internal.h"
#include "util/status.h"
#include "util/timer.h"

struct comm_reducer {
  float *buf;            /* (n) */
  size_t n, bucket;      /* floats in buf, floats per bucket */
  size_t nbuckets;
  size_t started;        /* buckets 0..started-1 are in flight or done */
  MPI_Request *req;      /* (nbuckets) */
  int world;
  double first_start, wait_seconds, total_seconds;
};

static size_t bucket_lo(const comm_reducer *r, size_t k) {
  size_t hi_from_end = (k + 1) * r->bucket;
  return hi_from_end >= r->n ? 0 : r->n - hi_from_end;
}

static size_t bucket_hi(const comm_reducer *r, size_t k) { return r->n - k * r->bucket; }

int comm_reducer_create(float *buf, size_t n, size_t bucket_floats, comm_reducer **out, char **err) {
  assert(bucket_floats > 0);
  if (bucket_floats > INT_MAX)
    return status_set(err, ST_INVALID, "gradient bucket of %zu floats is too large for MPI (at most %d)",
                      bucket_floats, INT_MAX);
  comm_reducer *r = calloc(1, sizeof *r);
  if (!r) return status_set(err, ST_NOMEM, "out of memory for the gradient reducer");
  r->buf = buf;
  r->n = n;
  r->bucket = bucket_floats;
  r->nbuckets = n == 0 ? 0 : (n + bucket_floats - 1) / bucket_floats;
  r->world = comm_world_size();
  r->req = malloc((r->nbuckets ? r->nbuckets : 1) * sizeof *r->req);
  if (!r->req) {
    size_t nbuckets = r->nbuckets;
    free(r);
    return status_set(err, ST_NOMEM, "out of memory for %zu gradient buckets", nbuckets);
  }
  comm_reducer_begin(r);
  *out = r;
  return ST_OK;
}

void comm_reducer_free(comm_reducer *r) {
  if (!r) return;
  free(r->req);
  free(r);
}

void comm_reducer_begin(comm_reducer *r) {
  for (size_t k = 0; k < r->nbuckets; k++) r->req[k] = MPI_REQUEST_NULL;
  r->started = 0;
  r->wait_seconds = 0;
  r->total_seconds = 0;
  r->first_start = 0;
}

int comm_reducer_ready(comm_reducer *r, size_t lo, char **err) {
  if (r->world == 1) return ST_OK;
  while (r->started < r->nbuckets && bucket_lo(r, r->started) >= lo) {
    size_t k = r->started;
    if (k == 0) r->first_start = timer_now();
    size_t a = bucket_lo(r, k), b = bucket_hi(r, k);
    int rc = MPI_Iallreduce(MPI_IN_PLACE, r->buf + a, (int)(b - a), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                            &r->req[k]);
    if (rc != MPI_SUCCESS) return comm_mpi_error(err, rc, "MPI_Iallreduce");
    r->started++;
  }
  return ST_OK;
}

int comm_reducer_poll(comm_reducer *r, char **err) {
  if (r->world == 1 || r->started == 0) return ST_OK;
  int flag = 0;
  int rc = MPI_Testall((int)r->started, r->req, &flag, MPI_STATUSES_IGNORE);
  return rc == MPI_SUCCESS ? ST_OK : comm_mpi_error(err, rc, "MPI_Testall");
}

int comm_reducer_finish(comm_reducer *r, float scale, char **err) {
  if (r->world > 1) {
    int rc = comm_reducer_ready(r, 0, err);
    if (rc) return rc;
    double t0 = timer_now();
    rc = comm_watch_wait(r->req, (int)r->nbuckets, "gradient MPI_Iallreduce", err);
    double t1 = timer_now();
    if (rc) return rc;
    r->wait_seconds = t1 - t0;
    r->total_seconds = r->nbuckets ? t1 - r->first_start : 0;
  }
  if (scale != 1.0f)
    for (size_t i = 0; i < r->n; i++) r->buf[i] *= scale;
  return ST_OK;
}

comm_reducer_stats comm_reducer_get_stats(const comm_reducer *r) {
  comm_reducer_stats s = {r->nbuckets, r->wait_seconds, r->total_seconds, (uint64_t)r->n * sizeof(float)};
  return s;
}
