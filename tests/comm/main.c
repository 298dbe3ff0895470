/* test_comm: comm/ (MPI world, collectives, gradient reducer). Runs as a
 * world of one and under mpirun (tests/comm_mpi.cmake); exits non-zero on
 * any rank whose assertions failed. */
#include <stdio.h>
#include <stdlib.h>

#include "comm/comm.h"
#include "harness_impl.h"

extern const harness_suite comm_world_suite;

int main(int argc, char **argv) {
  char *err = NULL;
  if (comm_init(&argc, &argv, &err)) {
    fprintf(stderr, "test_comm: %s\n", err);
    free(err);
    return 1;
  }
  const harness_suite *suites[] = {&comm_world_suite, NULL};
  int rc = harness_run(suites);
  comm_finalize();
  return rc;
}
