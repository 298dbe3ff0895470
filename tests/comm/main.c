/* test_comm: comm/ (MPI world, collectives). */
#include "harness_impl.h"

extern const harness_suite comm_world_suite;

int main(void) {
  const harness_suite *suites[] = {&comm_world_suite, NULL};
  return harness_run(suites);
}
