/* test_storage: storage/ (HDF5 named tensors, checkpoints). */
#include "harness_impl.h"

extern const harness_suite storage_library_suite;

int main(void) {
  const harness_suite *suites[] = {&storage_library_suite, NULL};
  return harness_run(suites);
}
