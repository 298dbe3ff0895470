/* storage/: the HDF5 library at run time is the one the headers describe. */
#include <string.h>

#include "harness.h"
#include "storage/storage.h"

static void test_hdf5_runtime_matches_headers(void) {
  CU_ASSERT_TRUE(storage_library_matches_headers());
  char v[64];
  storage_library_version(v, sizeof v);
  CU_ASSERT_EQUAL(strncmp(v, "HDF5 1.", 7), 0);
}

static const harness_test tests[] = {
    {"test_hdf5_runtime_matches_headers", test_hdf5_runtime_matches_headers},
    {NULL, NULL},
};
const harness_suite storage_library_suite = {"library", tests};
