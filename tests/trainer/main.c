/* test_trainer: trainer/ (parameters, layers, model, optimizer, loop). */
#include "harness_impl.h"

extern const harness_suite trainer_blas_suite;

int main(void) {
  const harness_suite *suites[] = {&trainer_blas_suite, NULL};
  return harness_run(suites);
}
