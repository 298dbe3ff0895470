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

static void test_kernel_choice_follows_cpu_features(void) {
  blas_cpu skx = {.avx = 1, .avx2 = 1, .fma = 1, .avx512f = 1, .avx512bw = 1, .avx512vl = 1,
                  .avx512dq = 1, .avx512cd = 1};
  blas_cpu cpx = skx, hsw = {.avx = 1, .avx2 = 1, .fma = 1}, knl = skx, old = {0};
  cpx.avx512_bf16 = 1;
  knl.avx512bw = 0; /* AVX-512F without BW/VL is not a SkylakeX */
  CU_ASSERT_STRING_EQUAL(blas_kernel_for_cpu(&skx), "SkylakeX");
  CU_ASSERT_STRING_EQUAL(blas_kernel_for_cpu(&cpx), "Cooperlake");
  CU_ASSERT_STRING_EQUAL(blas_kernel_for_cpu(&hsw), "Haswell");
  CU_ASSERT_STRING_EQUAL(blas_kernel_for_cpu(&knl), "Haswell");
  CU_ASSERT_PTR_NULL(blas_kernel_for_cpu(&old));
  /* Debian's 0.3.21 falling back to Prescott on an AVX-512 CPU: upgrade. */
  CU_ASSERT_STRING_EQUAL(blas_kernel_choice("Prescott", &skx, NULL), "SkylakeX");
  CU_ASSERT_STRING_EQUAL(blas_kernel_choice("Prescott", &hsw, NULL), "Haswell");
  CU_ASSERT_STRING_EQUAL(blas_kernel_choice("Haswell", &cpx, NULL), "Cooperlake");
  /* Same family (identical sgemm) or better already: keep. */
  CU_ASSERT_PTR_NULL(blas_kernel_choice("SkylakeX", &cpx, NULL));
  CU_ASSERT_PTR_NULL(blas_kernel_choice("SkylakeX", &hsw, NULL));
  CU_ASSERT_PTR_NULL(blas_kernel_choice("Prescott", &old, NULL));
  /* A user's OPENBLAS_CORETYPE is never overridden. */
  CU_ASSERT_PTR_NULL(blas_kernel_choice("Prescott", &skx, "Prescott"));
  CU_ASSERT_PTR_NULL(blas_kernel_choice("Prescott", &skx, ""));
  CU_ASSERT_EQUAL(blas_kernel_rank("skylakex"), 3);
  CU_ASSERT_EQUAL(blas_kernel_rank("Prescott"), 0);
}

static void test_sgemm_agrees_with_a_double_loop(void) { CU_ASSERT(blas_sgemm_check() < 1e-5); }

static const harness_test tests[] = {
    {"test_openblas_reports_version_and_kernel", test_openblas_reports_version_and_kernel},
    {"test_kernel_choice_follows_cpu_features", test_kernel_choice_follows_cpu_features},
    {"test_sgemm_agrees_with_a_double_loop", test_sgemm_agrees_with_a_double_loop},
    {NULL, NULL},
};
const harness_suite trainer_blas_suite = {"blas", tests};
