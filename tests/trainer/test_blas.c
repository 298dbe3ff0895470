/* trainer/: OpenBLAS is linked and names the kernel it selected. */
#include <string.h>

#include "harness.h"
#include "trainer/blas.h"

static void test_openblas_reports_version_and_kernel(void) {
  char v[256];
  blas_library_version(v, sizeof v);
  CU_ASSERT_EQUAL(strncmp(v, "OpenBLAS 0.", 11), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(v, blas_corename()));
  CU_ASSERT(strlen(blas_corename()) > 0);
}

static const harness_test tests[] = {
    {"test_openblas_reports_version_and_kernel", test_openblas_reports_version_and_kernel},
    {NULL, NULL},
};
const harness_suite trainer_blas_suite = {"blas", tests};
