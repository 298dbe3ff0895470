/* A rank that reduces gradients in a loop for up to a minute, recording its
 * pid in DIR/rank-R.pid: the victim and the witnesses of tests/comm_kill.sh,
 * which kills one rank and times how long the others take to go. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "comm/comm.h"
#include "util/timer.h"

int main(int argc, char **argv) {
  char *err = NULL;
  if (argc != 2 || comm_init(&argc, &argv, &err)) {
    fprintf(stderr, "usage: comm_soak DIR (under mpirun)%s%s\n", err ? ": " : "", err ? err : "");
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/rank-%d.pid", argv[1], comm_rank());
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "comm_soak: cannot write %s\n", path);
    comm_abort(2);
  }
  fprintf(f, "%d\n", (int)getpid());
  fclose(f);

  const size_t n = 1 << 16;
  float *g = calloc(n, sizeof *g);
  comm_reducer *r = NULL;
  if (!g || comm_reducer_create(g, n, 4096, 1, &r, &err)) comm_abort(2);
  double start = timer_now();
  while (timer_now() - start < 60.0) {
    comm_reducer_begin(r);
    if (comm_reducer_finish(r, 1.0f, &err)) {
      fprintf(stderr, "comm_soak: %s\n", err);
      comm_abort(1);
    }
  }
  comm_reducer_free(r);
  free(g);
  comm_finalize();
  return 0;
}
