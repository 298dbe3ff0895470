/* test_util: util/ (status, log, timer, SHA-256, Philox RNG, atomic files, CRC32C). */
#include "harness_impl.h"

extern const harness_suite util_basics_suite, util_rng_suite, util_file_suite, util_crc32c_suite;

int main(void) {
  const harness_suite *suites[] = {&util_basics_suite, &util_rng_suite, &util_file_suite, &util_crc32c_suite, NULL};
  return harness_run(suites);
}
