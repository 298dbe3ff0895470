/* The hang watchdog (see comm.h): every wait inside a collective is bounded,
 * and a rank that waits too long names the ranks it waits for.
 *
 * How a rank knows whom it waits for: collectives are called in the same
 * order on every rank, so their count is a clock all ranks share. When a
 * rank has given a collective all its part and starts waiting for it to
 * complete, it sends (count, step) to every peer on a communicator of its
 * own (tiny eager messages: they leave even when the peer is stopped). A
 * rank stuck in wait k names the peers whose latest announcement is below
 * k: they have not given their part yet. Reaching a wait is not the whole
 * story (a non-blocking collective progresses only while every rank calls
 * into MPI), so a waiting rank also repeats its announcement every quarter
 * of the limit as a heartbeat: a peer that has reached the wait but has
 * been silent for half the limit (stopped, or stuck inside MPI) is named
 * too. The watchdog's MPI calls are all the main thread's (the reducers'
 * progress threads use communicators of their own): waits poll
 * (MPI_Testall) instead of blocking.
 *
 * A backstop thread covers what no wait sees, a rank stuck outside any
 * collective (in compute or I/O, or a world of one): when one phase lasts
 * twice the limit it prints the same kind of line and ends the process,
 * which mpirun turns into the end of the job. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "comm/comm.h"
#include "comm/comm_internal.h"
#include "util/status.h"
#include "util/timer.h"

enum { ANNOUNCE_TAG = 7, BACKSTOP_EXIT = 4 };

typedef struct watchdog {
  int on;
  double limit_s;
  MPI_Comm comm;           /* a duplicate of MPI_COMM_WORLD: announcements only */
  int rank, world;
  int64_t seq;             /* collectives entered by this rank */
  int64_t *outbox;         /* (world, 2) (seq, step) being sent to each peer */
  double *heard;           /* (world) when each peer's last message arrived */
  MPI_Request *send, *recv; /* (world) */
  int64_t *inbox;          /* (world, 2) receive buffers */
  int64_t *seen;           /* (world, 2) each peer's latest (seq, step) */
  /* The phase, for messages and the backstop (written by the main thread). */
  _Atomic uint64_t step;
  _Atomic(const char *) op;
  _Atomic double phase_start; /* 0: unwatched */
  pthread_t thread;
  atomic_int stop_thread, thread_running;
} watchdog;

static watchdog g_wd;

/* Takes in every announcement that has arrived, reposting the receives. */
static void drain(watchdog *w) {
  for (int r = 0; r < w->world; r++) {
    if (r == w->rank) continue;
    for (;;) {
      int flag = 0;
      if (MPI_Test(&w->recv[r], &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS || !flag) break;
      w->heard[r] = timer_now();
      if (w->inbox[2 * r] > w->seen[2 * r]) {
        w->seen[2 * r] = w->inbox[2 * r];
        w->seen[2 * r + 1] = w->inbox[2 * r + 1];
      }
      if (MPI_Irecv(&w->inbox[2 * r], 2, MPI_INT64_T, r, ANNOUNCE_TAG, w->comm, &w->recv[r]) != MPI_SUCCESS) {
        w->recv[r] = MPI_REQUEST_NULL;
        break;
      }
    }
  }
}

/* "rank 1 (last seen at collective 40, step 11)" or "ranks 1 (...), 3
 * (...)": the peers that have not reached wait seq. */
static int is_behind(const watchdog *w, int r, double now) {
  return r != w->rank && (w->seen[2 * r] < w->seq || now - w->heard[r] > w->limit_s / 2);
}

static void describe_behind(const watchdog *w, char *buf, size_t size) {
  int n = 0, behind = 0;
  double now = timer_now();
  for (int r = 0; r < w->world; r++) behind += is_behind(w, r, now);
  size_t at = (size_t)snprintf(buf, size, "waiting for rank%s ", behind > 1 ? "s" : "");
  for (int r = 0; r < w->world && at < size; r++) {
    if (!is_behind(w, r, now)) continue;
    if (n++ == 8) {
      at += (size_t)snprintf(buf + at, size - at, " and more");
      break;
    }
    if (w->seen[2 * r] > 0)
      at += (size_t)snprintf(buf + at, size - at, "%s%d (silent for %.0f s, last seen at collective %lld, step %lld)",
                             n > 1 ? ", " : "", r, now - w->heard[r], (long long)w->seen[2 * r],
                             (long long)w->seen[2 * r + 1]);
    else
      at += (size_t)snprintf(buf + at, size - at, "%s%d (not seen since the watchdog started)", n > 1 ? ", " : "", r);
  }
  if (n == 0) snprintf(buf, size, "every other rank has reached it: one may be stuck inside MPI or the network");
}

static void *backstop_main(void *arg) {
  watchdog *w = arg;
  while (!atomic_load(&w->stop_thread)) {
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    double start = atomic_load(&w->phase_start);
    if (start <= 0 || timer_now() - start <= 2 * w->limit_s) continue;
    fprintf(stderr,
            "ddpt: rank %d: watchdog: step %llu, %s has run for %.0f s, twice the limit of %g s ([train] "
            "watchdog_s), outside any collective: this rank is stuck; ending the job\n",
            w->rank, (unsigned long long)atomic_load(&w->step), atomic_load(&w->op), timer_now() - start,
            w->limit_s);
    fflush(stderr);
    _exit(BACKSTOP_EXIT);
  }
  return NULL;
}

int comm_watchdog_start(double limit_s, char **err) {
  watchdog *w = &g_wd;
  if (w->on || limit_s <= 0) return ST_OK;
  memset(w, 0, sizeof *w);
  w->limit_s = limit_s;
  w->rank = comm_rank();
  w->world = comm_world_size();
  w->comm = MPI_COMM_NULL;
  atomic_store(&w->op, "start-up");
  if (w->world > 1) {
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &w->comm);
    if (rc != MPI_SUCCESS) return comm_mpi_error(err, rc, "MPI_Comm_dup");
    MPI_Comm_set_errhandler(w->comm, MPI_ERRORS_RETURN);
    w->send = malloc((size_t)w->world * sizeof *w->send);
    w->recv = malloc((size_t)w->world * sizeof *w->recv);
    w->inbox = calloc(2 * (size_t)w->world, sizeof *w->inbox);
    w->seen = calloc(2 * (size_t)w->world, sizeof *w->seen);
    w->heard = malloc((size_t)w->world * sizeof *w->heard);
    w->outbox = calloc(2 * (size_t)w->world, sizeof *w->outbox);
    if (!w->send || !w->recv || !w->inbox || !w->seen || !w->heard || !w->outbox) {
      comm_watchdog_stop();
      return status_set(err, ST_NOMEM, "rank %d: out of memory for the watchdog", w->rank);
    }
    for (int r = 0; r < w->world; r++) {
      w->heard[r] = timer_now();
      w->send[r] = w->recv[r] = MPI_REQUEST_NULL;
      if (r != w->rank &&
          (rc = MPI_Irecv(&w->inbox[2 * r], 2, MPI_INT64_T, r, ANNOUNCE_TAG, w->comm, &w->recv[r])) != MPI_SUCCESS) {
        comm_watchdog_stop();
        return comm_mpi_error(err, rc, "MPI_Irecv");
      }
    }
  }
  int e = pthread_create(&w->thread, NULL, backstop_main, w);
  if (e != 0) {
    comm_watchdog_stop();
    return status_set(err, ST_COMM, "rank %d: cannot start the watchdog thread: %s", w->rank, strerror(e));
  }
  atomic_store(&w->thread_running, 1);
  w->on = 1;
  return ST_OK;
}

void comm_watchdog_stop(void) {
  watchdog *w = &g_wd;
  if (atomic_load(&w->thread_running)) {
    atomic_store(&w->stop_thread, 1);
    pthread_join(w->thread, NULL);
  }
  for (int r = 0; w->recv && r < w->world; r++)
    if (w->recv[r] != MPI_REQUEST_NULL) {
      MPI_Cancel(&w->recv[r]);
      MPI_Request_free(&w->recv[r]);
    }
  /* Sends of a few bytes have long left; a peer that died keeps its own. */
  for (int r = 0; w->send && r < w->world; r++)
    if (w->send[r] != MPI_REQUEST_NULL) MPI_Request_free(&w->send[r]);
  if (w->comm != MPI_COMM_NULL) MPI_Comm_free(&w->comm);
  free(w->send);
  free(w->recv);
  free(w->inbox);
  free(w->seen);
  free(w->heard);
  free(w->outbox);
  memset(w, 0, sizeof *w);
}

void comm_watchdog_phase(uint64_t step, const char *op, int watched) {
  watchdog *w = &g_wd;
  if (!w->on) return;
  atomic_store(&w->phase_start, 0.0);
  atomic_store(&w->step, step);
  atomic_store(&w->op, op);
  if (watched) atomic_store(&w->phase_start, timer_now());
}

/* Sends (seq, step) to every peer whose previous message has left (one
 * that has not is not heard from either, so it is not waited on here: a
 * stopped peer must not stop the watchdog). The buffer is per peer: a send
 * in flight keeps its own. */
static void send_to_peers(watchdog *w) {
  for (int r = 0; r < w->world; r++) {
    if (r == w->rank) continue;
    int done = 1;
    if (w->send[r] != MPI_REQUEST_NULL && MPI_Test(&w->send[r], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) continue;
    if (!done) continue;
    w->outbox[2 * r] = w->seq;
    w->outbox[2 * r + 1] = (int64_t)atomic_load(&w->step);
    if (MPI_Isend(&w->outbox[2 * r], 2, MPI_INT64_T, r, ANNOUNCE_TAG, w->comm, &w->send[r]) != MPI_SUCCESS)
      w->send[r] = MPI_REQUEST_NULL;
  }
}

/* This rank has given its part of the next collective: its clock advances
 * and its peers hear of it. */
static void announce(void) {
  watchdog *w = &g_wd;
  if (!w->on || w->world == 1) return;
  w->seq++;
  send_to_peers(w);
  drain(w);
}

/* comm_watch_wait's test: all of its requests done. */
typedef struct request_set {
  MPI_Request *req;
  int n;
} request_set;

static int test_requests(void *ctx, int *done, char **err) {
  request_set *s = ctx;
  int rc = MPI_Testall(s->n, s->req, done, MPI_STATUSES_IGNORE);
  return rc == MPI_SUCCESS ? ST_OK : comm_mpi_error(err, rc, "MPI_Testall");
}

int comm_watch_wait(MPI_Request *req, int n, const char *call, char **err) {
  if (!g_wd.on) {
    int rc = MPI_Waitall(n, req, MPI_STATUSES_IGNORE);
    return rc == MPI_SUCCESS ? ST_OK : comm_mpi_error(err, rc, call);
  }
  request_set s = {req, n};
  return comm_watch_progress(test_requests, &s, call, err);
}

int comm_watch_progress(comm_advance_fn advance, void *ctx, const char *call, char **err) {
  watchdog *w = &g_wd;
  announce();
  double start = timer_now();
  int watched = w->on && atomic_load(&w->phase_start) > 0, beats = 0;
  for (long spins = 0;; spins++) {
    int done = 0;
    int rc = advance(ctx, &done, err);
    if (rc) return rc;
    if (done) return ST_OK;
    /* Spin briefly (most waits end within microseconds), then yield the
     * core: under oversubscription the rank being waited for needs it. */
    if (spins > 2000) {
      struct timespec ts = {0, 100 * 1000};
      nanosleep(&ts, NULL);
    }
    if (!w->on) continue;
    double waited = timer_now() - start;
    if ((spins & 63) == 0 && w->world > 1) {
      drain(w);
      if (watched && waited > (beats + 1) * w->limit_s / 4) {
        beats++;
        send_to_peers(w); /* the heartbeat */
      }
    }
    if (watched && waited > w->limit_s) {
      char behind[512];
      drain(w);
      describe_behind(w, behind, sizeof behind);
      return status_set(err, ST_COMM,
                        "watchdog: step %llu, %s (%s, collective %lld) has waited %.0f s, over the limit "
                        "of %g s ([train] watchdog_s); %s; ending the job",
                        (unsigned long long)atomic_load(&w->step), atomic_load(&w->op), call,
                        (long long)w->seq, waited, w->limit_s, behind);
    }
  }
}
