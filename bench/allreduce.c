/* The gradient reduction alone, through ddpt's own reducer (comm.h), so the
 * figures are what `ddpt train` pays whatever algorithm the reducer uses.
 * Each CASE is FLOATS:BUCKET_FLOATS:ROUNDS; a round marks the whole buffer
 * ready at once (no backward to overlap) and waits for every bucket. Every
 * rank fills its buffer with rank + 1 before each round and checks the sums
 * after it. Rank 0 prints one JSON line per case with each round's seconds.
 * bench/allreduce_netns.py runs it across namespaced hosts.
 * usage: mpirun -np N bench_allreduce CASE... */
#include <stdio.h>
#include <stdlib.h>

#include "comm/comm.h"
#include "util/timer.h"

typedef struct bench_case {
  size_t floats, bucket_floats, rounds;
} bench_case;

static int parse_case(const char *arg, bench_case *c) {
  char tail;
  return sscanf(arg, "%zu:%zu:%zu%c", &c->floats, &c->bucket_floats, &c->rounds, &tail) == 3 && c->floats > 0 &&
         c->bucket_floats > 0 && c->rounds > 0;
}

static void fill(float *buf, size_t n, float value) {
  for (size_t i = 0; i < n; i++) buf[i] = value;
}

/* Seconds of one reduction of the whole buffer; -1 on failure (*err set). */
static double time_round(comm_reducer *r, char **err) {
  double start = timer_now();
  comm_reducer_begin(r);
  if (comm_reducer_ready(r, 0, err) || comm_reducer_finish(r, 1.0f, err)) return -1;
  return timer_now() - start;
}

/* Runs one case; prints its line on rank 0. Returns 0, or 1 with a message. */
static int run_case(const bench_case *c, char **err) {
  int rank = comm_rank(), world = comm_world_size();
  float *buf = malloc(c->floats * sizeof *buf);
  double *seconds = calloc(c->rounds, sizeof *seconds);
  comm_reducer *r = NULL;
  if (!buf || !seconds || comm_reducer_create(buf, c->floats, c->bucket_floats, 1, &r, err)) {
    free(buf);
    free(seconds);
    if (!*err) fprintf(stderr, "bench_allreduce: rank %d: out of memory for %zu floats\n", rank, c->floats);
    return 1;
  }
  const float expect = (float)world * (float)(world + 1) / 2;
  int rc = 0;
  for (size_t k = 0; k < c->rounds && !rc; k++) {
    fill(buf, c->floats, (float)(rank + 1));
    seconds[k] = time_round(r, err);
    rc = seconds[k] < 0;
    for (size_t i = 0; i < c->floats && !rc; i++) {
      if (buf[i] == expect) continue;
      fprintf(stderr, "bench_allreduce: rank %d: float %zu is %g after the sum, not %g\n", rank, i, buf[i], expect);
      rc = 1;
    }
  }
  if (!rc && rank == 0) {
    comm_reducer_stats s = comm_reducer_get_stats(r);
    printf("{\"ranks\":%d,\"bytes\":%zu,\"bucket_bytes\":%zu,\"buckets\":%zu,\"seconds\":[", world,
           c->floats * sizeof(float), c->bucket_floats * sizeof(float), s.buckets);
    for (size_t k = 0; k < c->rounds; k++) printf("%s%.6f", k ? "," : "", seconds[k]);
    printf("]}\n");
    fflush(stdout);
  }
  comm_reducer_free(r);
  free(seconds);
  free(buf);
  return rc;
}

int main(int argc, char **argv) {
  char *err = NULL;
  if (comm_init(&argc, &argv, &err)) {
    fprintf(stderr, "bench_allreduce: %s\n", err);
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    bench_case c;
    if (!parse_case(argv[i], &c)) {
      fprintf(stderr, "bench_allreduce: case '%s' is not FLOATS:BUCKET_FLOATS:ROUNDS (positive integers)\n", argv[i]);
      comm_abort(2);
    }
    if (run_case(&c, &err)) {
      if (err) fprintf(stderr, "bench_allreduce: %s\n", err);
      comm_abort(1);
    }
  }
  comm_finalize();
  return 0;
}
