/* MPI world set-up, errors, broadcast and ordered scalar reductions (see
 * comm.h). The gradient reducer is in reducer.c. */
#include "comm/comm.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "comm/comm_internal.h"
#include "util/status.h"

static int g_we_initialised = 0;
static int g_rank = 0, g_size = 1;
static int g_thread_multiple = 0;

int comm_thread_multiple(void) { return g_thread_multiple; }

int comm_mpi_error(char **err, int rc, const char *call) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
  return status_set(err, ST_COMM,
                    "rank %d of %d: %s failed: %s (another rank probably died or was killed; see its log)",
                    g_rank, g_size, call, text);
}

int comm_init(int *argc, char ***argv, char **err) {
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    /* MULTIPLE lets each gradient reducer's progress thread call MPI
     * (reducer.c); an MPI without it gets polls between layers only. */
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS)
      return status_set(err, ST_COMM, "MPI_Init_thread failed (code %d); check the Open MPI installation with `mpirun -np 1 true`", rc);
    if (provided < MPI_THREAD_FUNNELED)
      return status_set(err, ST_COMM, "MPI provides thread level %d, ddpt needs MPI_THREAD_FUNNELED", provided);
    g_we_initialised = 1;
    g_thread_multiple = provided >= MPI_THREAD_MULTIPLE;
  } else {
    int provided = 0;
    MPI_Query_thread(&provided);
    g_thread_multiple = provided >= MPI_THREAD_MULTIPLE;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  return ST_OK;
}

void comm_finalize(void) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (g_we_initialised && !finalized) MPI_Finalize();
  g_we_initialised = 0;
  g_thread_multiple = 0;
  g_rank = 0;
  g_size = 1;
}

void comm_abort(int code) {
  int initialised = 0, finalized = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalized);
  fflush(stdout);
  fflush(stderr);
  if (initialised && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
  exit(code);
}

int comm_rank(void) { return g_rank; }
int comm_world_size(void) { return g_size; }

void comm_library_version(char *buf, size_t size) {
  char lib[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0, major = 0, minor = 0;
  MPI_Get_library_version(lib, &len);
  MPI_Get_version(&major, &minor);
  lib[strcspn(lib, ",\n")] = '\0';
  snprintf(buf, size, "%s (MPI %d.%d)", lib, major, minor);
}

static int world_active(void) {
  int initialised = 0, finalized = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalized);
  return initialised && !finalized && g_size > 1;
}

int comm_broadcast(void *buf, size_t bytes, int root, char **err) {
  if (!world_active()) return ST_OK;
  /* MPI counts are int: send in pieces of at most 1 GiB. */
  const size_t piece = (size_t)1 << 30;
  for (size_t off = 0; off < bytes; off += piece) {
    size_t n = bytes - off < piece ? bytes - off : piece;
    MPI_Request req;
    int rc = MPI_Ibcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS) return comm_mpi_error(err, rc, "MPI_Ibcast");
    if ((rc = comm_watch_wait(&req, 1, "MPI_Ibcast", err))) return rc;
  }
  return ST_OK;
}

/* MPI_Allgather of n items from every rank, under the watchdog. */
static int allgather(const void *mine, void *all, int n, MPI_Datatype type, char **err) {
  MPI_Request req;
  int rc = MPI_Iallgather(mine, n, type, all, n, type, MPI_COMM_WORLD, &req);
  if (rc != MPI_SUCCESS) return comm_mpi_error(err, rc, "MPI_Iallgather");
  return comm_watch_wait(&req, 1, "MPI_Iallgather", err);
}

/* Gathers every rank's values and combines them in rank order locally: the
 * same operations in the same order on every rank. */
static int allreduce_ordered(double *vals, size_t n, int use_max, char **err) {
  if (!world_active() || n == 0) return ST_OK;
  double *all = malloc(n * (size_t)g_size * sizeof *all);
  if (!all) return status_set(err, ST_NOMEM, "rank %d: out of memory for a %zu-value reduction", g_rank, n);
  int rc = allgather(vals, all, (int)n, MPI_DOUBLE, err);
  if (rc) {
    free(all);
    return rc;
  }
  for (size_t i = 0; i < n; i++) {
    double acc = all[i];
    for (int r = 1; r < g_size; r++) {
      double x = all[(size_t)r * n + i];
      acc = use_max ? (x > acc ? x : acc) : acc + x;
    }
    vals[i] = acc;
  }
  free(all);
  return ST_OK;
}

int comm_allreduce_sum_f64(double *vals, size_t n, char **err) { return allreduce_ordered(vals, n, 0, err); }
int comm_allreduce_max_f64(double *vals, size_t n, char **err) { return allreduce_ordered(vals, n, 1, err); }

int comm_allreduce_or_u8(uint8_t *bits, size_t n, char **err) {
  if (!world_active() || n == 0) return ST_OK;
  if (n > INT_MAX) return status_set(err, ST_INVALID, "rank %d: a bitmap of %zu bytes is too large for MPI", g_rank, n);
  MPI_Request req;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, bits, (int)n, MPI_UNSIGNED_CHAR, MPI_BOR, MPI_COMM_WORLD, &req);
  if (rc != MPI_SUCCESS) return comm_mpi_error(err, rc, "MPI_Iallreduce");
  return comm_watch_wait(&req, 1, "MPI_Iallreduce", err);
}

int comm_check_same_digest(const uint8_t digest[32], const char *what, char **err) {
  if (!world_active()) return ST_OK;
  uint8_t *all = malloc(32 * (size_t)g_size);
  if (!all) return status_set(err, ST_NOMEM, "rank %d: out of memory comparing %s", g_rank, what);
  int rc = allgather(digest, all, 32, MPI_BYTE, err);
  if (rc) {
    free(all);
    return rc;
  }
  int differing = -1;
  for (int r = 1; r < g_size && differing < 0; r++)
    if (memcmp(all, all + 32 * (size_t)r, 32) != 0) differing = r;
  free(all);
  if (differing >= 0)
    return status_set(err, ST_MISMATCH,
                      "%s differs between rank 0 and rank %d; every rank must use the same one", what, differing);
  return ST_OK;
}

/* Appends the ranks of all[] equal to host (from first on) to line as
 * ranges ("0-3,6"). */
static void append_rank_ranges(char *line, size_t size, const char *all, int first) {
  size_t used = strlen(line);
  const char *host = all + (size_t)first * MPI_MAX_PROCESSOR_NAME;
  int n = 0;
  for (int r = first; r < g_size;) {
    if (strcmp(all + (size_t)r * MPI_MAX_PROCESSOR_NAME, host) != 0) {
      r++;
      continue;
    }
    int end = r;
    while (end + 1 < g_size && strcmp(all + (size_t)(end + 1) * MPI_MAX_PROCESSOR_NAME, host) == 0) end++;
    used += (size_t)snprintf(line + used, used < size ? size - used : 0, end > r ? "%s%d-%d" : "%s%d",
                             n++ ? "," : "", r, end);
    r = end + 1;
  }
}

int comm_host_map(char **out, char **err) {
  *out = NULL;
  char mine[MPI_MAX_PROCESSOR_NAME] = {0};
  int len = 0;
  if (MPI_Get_processor_name(mine, &len) != MPI_SUCCESS) snprintf(mine, sizeof mine, "unknown");
  char *all = calloc((size_t)g_size, MPI_MAX_PROCESSOR_NAME);
  size_t size = (size_t)g_size * (MPI_MAX_PROCESSOR_NAME + 32) + 1;
  char *line = calloc(size, 1);
  int rc = all && line ? ST_OK : status_set(err, ST_NOMEM, "rank %d: out of memory for the host map", g_rank);
  if (rc == ST_OK && world_active()) rc = allgather(mine, all, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, err);
  else if (rc == ST_OK) memcpy(all, mine, sizeof mine);
  for (int r = 0; rc == ST_OK && r < g_size; r++) {
    const char *host = all + (size_t)r * MPI_MAX_PROCESSOR_NAME;
    int seen = 0, on_host = 0;
    for (int q = 0; q < r && !seen; q++) seen = strcmp(all + (size_t)q * MPI_MAX_PROCESSOR_NAME, host) == 0;
    if (seen) continue;
    for (int q = r; q < g_size; q++) on_host += strcmp(all + (size_t)q * MPI_MAX_PROCESSOR_NAME, host) == 0;
    size_t used = strlen(line);
    snprintf(line + used, size - used, "%s%s: rank%s ", used ? "; " : "", host, on_host > 1 ? "s" : "");
    append_rank_ranges(line, size, all, r);
  }
  free(all);
  if (rc != ST_OK) {
    free(line);
    return rc;
  }
  *out = line;
  return ST_OK;
}
