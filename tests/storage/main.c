/* test_storage: storage/ (HDF5 named tensors, checkpoints). */
#include "harness_impl.h"

extern const harness_suite storage_library_suite;
extern const harness_suite storage_ckpt_file_suite;
extern const harness_suite storage_ckpt_dir_suite;
extern const harness_suite storage_ckpt_ranges_suite;
extern const harness_suite storage_ckpt_cli_suite;
extern const harness_suite storage_safetensors_suite;
extern const harness_suite storage_tf_bundle_suite;

int main(void) {
  const harness_suite *suites[] = {&storage_library_suite, &storage_ckpt_file_suite, &storage_ckpt_dir_suite, &storage_ckpt_ranges_suite,
                                     &storage_ckpt_cli_suite, &storage_safetensors_suite,
                                     &storage_tf_bundle_suite, NULL};
  return harness_run(suites);
}
